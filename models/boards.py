"""Boards and per-board grants (lists and cards live in their own tables, migration 0004)."""

from __future__ import annotations

import peewee

from models.base import BaseModel, timestamptz
from models.users import User
from models.workspaces import Workspace, role_check

RESOURCE_ROLES = ("viewer", "commenter", "editor", "manager")


class Board(BaseModel):
    workspace = peewee.ForeignKeyField(Workspace, on_delete="CASCADE", index=True)
    name = peewee.TextField()
    description = peewee.TextField(default="", constraints=[peewee.SQL("DEFAULT ''")])
    color = peewee.TextField(null=True)
    # Private: visible only to explicit board members and workspace Admins/Owners.
    is_private = peewee.BooleanField(default=False, constraints=[peewee.SQL("DEFAULT false")])
    created_by = peewee.ForeignKeyField(
        User, column_name="created_by", null=True, on_delete="SET NULL", index=True
    )
    updated_at = timestamptz(default_now=True)
    archived_at = timestamptz(null=True)
    deleted_at = timestamptz(null=True)
    # Optimistic concurrency: bumped by every update of the board row.
    version = peewee.IntegerField(default=1, constraints=[peewee.SQL("DEFAULT 1")])

    class Meta:
        table_name = "boards"


class BoardMember(BaseModel):
    """An explicit grant on one board; overrides the workspace default in both directions."""

    board = peewee.ForeignKeyField(Board, on_delete="CASCADE", index=True)
    user = peewee.ForeignKeyField(User, on_delete="CASCADE", index=True)
    role = peewee.TextField(constraints=[role_check("role", RESOURCE_ROLES)])
    granted_by = peewee.ForeignKeyField(
        User,
        column_name="granted_by",
        null=True,
        on_delete="SET NULL",
        index=True,
        backref="board_grants_given",
    )

    class Meta:
        table_name = "board_members"
        indexes = ((("board", "user"), True),)


BOARD_HEADER_TABLES = [Board, BoardMember]
