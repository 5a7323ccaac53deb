"""Documents and per-document grants (CRDT snapshots, versions and blocks: migration 0003)."""

from __future__ import annotations

import peewee

from models.base import BaseModel, timestamptz
from models.boards import RESOURCE_ROLES, Board
from models.users import User
from models.workspaces import Workspace, role_check


class Document(BaseModel):
    workspace = peewee.ForeignKeyField(Workspace, on_delete="CASCADE", index=True)
    board = peewee.ForeignKeyField(Board, null=True, on_delete="SET NULL", index=True)
    # Pages in pages: deleting a parent (hard) removes its sub-pages.
    parent = peewee.ForeignKeyField("self", null=True, on_delete="CASCADE", index=True)
    title = peewee.TextField(default="", constraints=[peewee.SQL("DEFAULT ''")])
    is_private = peewee.BooleanField(default=False, constraints=[peewee.SQL("DEFAULT false")])
    created_by = peewee.ForeignKeyField(User, null=True, on_delete="SET NULL", index=True)
    updated_at = timestamptz(default_now=True)
    deleted_at = timestamptz(null=True)

    class Meta:
        table_name = "documents"


class DocumentGrant(BaseModel):
    """An explicit grant on one document; overrides the inherited default in both directions."""

    document = peewee.ForeignKeyField(Document, on_delete="CASCADE", index=True)
    user = peewee.ForeignKeyField(User, on_delete="CASCADE", index=True)
    role = peewee.TextField(constraints=[role_check("role", RESOURCE_ROLES)])
    granted_by = peewee.ForeignKeyField(
        User, null=True, on_delete="SET NULL", index=True, backref="document_grants_given"
    )

    class Meta:
        table_name = "document_grants"
        indexes = ((("document", "user"), True),)


DOCUMENT_HEADER_TABLES = [Document, DocumentGrant]
