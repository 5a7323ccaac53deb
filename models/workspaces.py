"""Workspaces, their members and roles, invitations, and the outbox for side effects."""

from __future__ import annotations

import peewee
from playhouse.postgres_ext import BinaryJSONField

from models.base import BaseModel, timestamptz
from models.users import User

WORKSPACE_ROLES = ("owner", "admin", "member", "guest")


def role_check(column: str, roles: tuple[str, ...]) -> peewee.SQL | peewee.NodeList:
    allowed = ", ".join(f"'{r}'" for r in roles)
    return peewee.Check(f"{column} IN ({allowed})")


class Workspace(BaseModel):
    name = peewee.TextField()
    # Unique on lower(slug) (migration 0002).
    slug = peewee.TextField()
    created_by = peewee.ForeignKeyField(
        User, column_name="created_by", null=True, on_delete="SET NULL", index=True
    )
    updated_at = timestamptz(default_now=True)
    # Soft delete: hidden at once, purged by a job after the grace period.
    deleted_at = timestamptz(null=True)

    class Meta:
        table_name = "workspaces"


class WorkspaceMember(BaseModel):
    workspace = peewee.ForeignKeyField(Workspace, on_delete="CASCADE", index=True)
    user = peewee.ForeignKeyField(User, on_delete="CASCADE", index=True)
    role = peewee.TextField(constraints=[role_check("role", WORKSPACE_ROLES)])
    updated_at = timestamptz(default_now=True)
    # An Owner/Admin asked for the weekly activity report by email (migration 0025).
    activity_report_email = peewee.BooleanField(
        default=False, constraints=[peewee.SQL("DEFAULT false")]
    )

    class Meta:
        table_name = "workspace_members"
        indexes = ((("workspace", "user"), True),)


class Invitation(BaseModel):
    workspace = peewee.ForeignKeyField(Workspace, on_delete="CASCADE", index=True)
    email = peewee.TextField()
    role = peewee.TextField(constraints=[role_check("role", WORKSPACE_ROLES)])
    # Only a SHA-256 of the single-use token is stored: a database leak reveals no usable links.
    token_hash = peewee.TextField(unique=True)
    invited_by = peewee.ForeignKeyField(
        User, column_name="invited_by", null=True, on_delete="SET NULL", index=True
    )
    expires_at = timestamptz()
    accepted_at = timestamptz(null=True)
    accepted_by = peewee.ForeignKeyField(
        User,
        column_name="accepted_by",
        null=True,
        on_delete="SET NULL",
        index=True,
        backref="accepted_invitations",
    )
    revoked_at = timestamptz(null=True)

    class Meta:
        table_name = "invitations"


class Outbox(BaseModel):
    """Side effects (emails, webhooks) written in the same transaction as the change that causes
    them, and delivered by a background job: nothing is sent for a rolled-back change."""

    kind = peewee.TextField()
    payload = BinaryJSONField(index=False)
    available_at = timestamptz(default_now=True)
    processed_at = timestamptz(null=True)
    # Set (with processed_at) when delivery was given up (models/migrations/m0010_mail_state.py).
    failed_at = timestamptz(null=True)
    attempts = peewee.IntegerField(default=0, constraints=[peewee.SQL("DEFAULT 0")])
    last_error = peewee.TextField(null=True)

    class Meta:
        table_name = "outbox"


WORKSPACE_TABLES = [Workspace, WorkspaceMember, Invitation, Outbox]
