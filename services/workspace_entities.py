"""What the workspace services return: a workspace (with the caller's role), a member, an
invitation. Built from repository rows (`from_row`, `core/entity.py`), serialised by the schemas
of `handlers/schemas/workspaces.py`, which read them by attribute as they read rows by key.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from uuid import UUID

from core.entity import FromRow


@dataclass(frozen=True)
class Workspace(FromRow):
    id: UUID
    name: str
    slug: str
    created_by: UUID | None
    created_at: datetime
    updated_at: datetime


@dataclass(frozen=True)
class MyWorkspace(Workspace):
    """A workspace as one member sees it: with their role."""

    my_role: str


@dataclass(frozen=True)
class WorkspaceMember(FromRow):
    user_id: UUID
    email: str
    display_name: str
    role: str
    joined_at: datetime


@dataclass(frozen=True)
class Invitation(FromRow):
    """An invitation's record (the token is never stored: only its hash, which this leaves out)."""

    id: UUID
    workspace_id: UUID
    email: str
    role: str
    invited_by: UUID | None
    expires_at: datetime
    accepted_at: datetime | None
    accepted_by: UUID | None
    revoked_at: datetime | None
    created_at: datetime


@dataclass(frozen=True)
class PendingInvitation(Invitation):
    """An invitation as the list of pending ones shows it: with the inviter's name."""

    invited_by_name: str | None


@dataclass(frozen=True)
class Inviter(FromRow):
    """Who sent an invitation, as the invitee's email and notification name them."""

    id: UUID
    display_name: str


@dataclass(frozen=True)
class AdminWorkspace(Workspace):
    """A workspace as an instance admin sees it: deleted ones too."""

    deleted_at: datetime | None
