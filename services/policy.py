"""The one permission policy: may `user` do `action` on `resource`?

Every handler, the WebSocket layer and background jobs ask `require()` / `can()`. The decision is a
pure function of a few facts (workspace role, explicit grants, the private flag) so it is tested as
a table; loading the facts is one SQL query per check.

Rules (the README's capability matrix is generated from `CAPABILITIES`):
* Workspace roles: owner > admin > member > guest. Non-members see nothing (404, the workspace's
  existence is not revealed).
* Boards and documents get an effective *resource role*: manager > editor > commenter > viewer.
  - Owner/Admin: manager on everything in the workspace, private or not.
  - An explicit grant on the resource wins otherwise, narrowing or widening the default.
  - A document on a board without its own grant inherits the caller's role on the board.
  - Default for Members: editor on non-private resources; nothing on private ones.
  - Default for Guests: nothing (they see only what is shared with them explicitly).
* A caller who cannot even view a resource gets 404; one who can view but not act gets 403.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum, StrEnum
from typing import TYPE_CHECKING

from models.db import Database
from services.errors import Forbidden, NotFound

if TYPE_CHECKING:
    from server.context import AppContext


class WorkspaceRole(IntEnum):
    GUEST = 1
    MEMBER = 2
    ADMIN = 3
    OWNER = 4

    @classmethod
    def parse(cls, value: str | None) -> WorkspaceRole | None:
        return None if value is None else cls[value.upper()]

    @property
    def label(self) -> str:
        return self.name.lower()


class ResourceRole(IntEnum):
    VIEWER = 1
    COMMENTER = 2
    EDITOR = 3
    MANAGER = 4

    @classmethod
    def parse(cls, value: str | None) -> ResourceRole | None:
        return None if value is None else cls[value.upper()]

    @property
    def label(self) -> str:
        return self.name.lower()


class Action(StrEnum):
    WORKSPACE_VIEW = "workspace:view"
    WORKSPACE_UPDATE = "workspace:update"
    WORKSPACE_DELETE = "workspace:delete"
    WORKSPACE_MANAGE_MEMBERS = "workspace:manage_members"
    WORKSPACE_INVITE = "workspace:invite"
    WORKSPACE_CREATE_CONTENT = "workspace:create_content"
    BOARD_VIEW = "board:view"
    BOARD_EDIT = "board:edit"
    BOARD_MANAGE = "board:manage"
    DOCUMENT_VIEW = "document:view"
    DOCUMENT_COMMENT = "document:comment"
    DOCUMENT_EDIT = "document:edit"
    DOCUMENT_MANAGE = "document:manage"
    DOCUMENT_SHARE = "document:share"

    @property
    def kind(self) -> str:
        return self.value.split(":")[0]


# Minimum role needed for each action: a workspace role for workspace actions, the effective
# resource role for board and document actions.
CAPABILITIES: dict[Action, WorkspaceRole | ResourceRole] = {
    Action.WORKSPACE_VIEW: WorkspaceRole.GUEST,
    Action.WORKSPACE_UPDATE: WorkspaceRole.ADMIN,
    Action.WORKSPACE_DELETE: WorkspaceRole.OWNER,
    Action.WORKSPACE_MANAGE_MEMBERS: WorkspaceRole.ADMIN,
    Action.WORKSPACE_INVITE: WorkspaceRole.MEMBER,
    Action.WORKSPACE_CREATE_CONTENT: WorkspaceRole.MEMBER,
    Action.BOARD_VIEW: ResourceRole.VIEWER,
    Action.BOARD_EDIT: ResourceRole.EDITOR,
    Action.BOARD_MANAGE: ResourceRole.MANAGER,
    Action.DOCUMENT_VIEW: ResourceRole.VIEWER,
    Action.DOCUMENT_COMMENT: ResourceRole.COMMENTER,
    Action.DOCUMENT_EDIT: ResourceRole.EDITOR,
    Action.DOCUMENT_MANAGE: ResourceRole.MANAGER,
    Action.DOCUMENT_SHARE: ResourceRole.MANAGER,
}
VIEW_ACTION = {
    "workspace": Action.WORKSPACE_VIEW,
    "board": Action.BOARD_VIEW,
    "document": Action.DOCUMENT_VIEW,
}


@dataclass(frozen=True)
class Resource:
    kind: str  # "workspace" | "board" | "document"
    id: str

    @classmethod
    def workspace(cls, workspace_id: str) -> Resource:
        return cls("workspace", workspace_id)

    @classmethod
    def board(cls, board_id: str) -> Resource:
        return cls("board", board_id)

    @classmethod
    def document(cls, document_id: str) -> Resource:
        return cls("document", document_id)


@dataclass(frozen=True)
class AccessFacts:
    """What the decision needs to know about one user and one resource."""

    workspace_id: str
    workspace_role: WorkspaceRole | None
    is_private: bool = False
    grant: ResourceRole | None = None
    # For a document on a board: the caller's effective role on that board (None = no access).
    inherited: ResourceRole | None = None
    inherits: bool = False


@dataclass(frozen=True)
class Access:
    """The effective access of a user to a resource, as returned by `load_access`."""

    workspace_id: str
    workspace_role: WorkspaceRole | None
    resource_role: ResourceRole | None

    def allows(self, action: Action) -> bool:
        needed = CAPABILITIES[action]
        if isinstance(needed, WorkspaceRole):
            return self.workspace_role is not None and self.workspace_role >= needed
        return self.resource_role is not None and self.resource_role >= needed


def effective_resource_role(facts: AccessFacts) -> ResourceRole | None:
    """The pure rule of the module docstring."""
    role = facts.workspace_role
    if role is None:
        return None
    if role >= WorkspaceRole.ADMIN:
        return ResourceRole.MANAGER
    if facts.grant is not None:
        return facts.grant
    if facts.inherits:
        return facts.inherited
    if role == WorkspaceRole.MEMBER and not facts.is_private:
        return ResourceRole.EDITOR
    return None


def decide(facts: AccessFacts) -> Access:
    return Access(facts.workspace_id, facts.workspace_role, effective_resource_role(facts))


# --- loading facts (one query per check) -----------------------------------------------------

_WORKSPACE_SQL = """
SELECT w.id AS workspace_id, m.role AS workspace_role
FROM workspaces w
LEFT JOIN workspace_members m ON m.workspace_id = w.id AND m.user_id = $2
WHERE w.id = $1 AND w.deleted_at IS NULL
"""

_BOARD_SQL = """
SELECT b.workspace_id, m.role AS workspace_role, b.is_private, g.role AS grant_role
FROM boards b
JOIN workspaces w ON w.id = b.workspace_id AND w.deleted_at IS NULL
LEFT JOIN workspace_members m ON m.workspace_id = b.workspace_id AND m.user_id = $2
LEFT JOIN board_members g ON g.board_id = b.id AND g.user_id = $2
WHERE b.id = $1 AND b.deleted_at IS NULL
"""

_DOCUMENT_SQL = """
SELECT d.workspace_id, m.role AS workspace_role, d.is_private, g.role AS grant_role,
       d.board_id, b.is_private AS board_private, bg.role AS board_grant_role
FROM documents d
JOIN workspaces w ON w.id = d.workspace_id AND w.deleted_at IS NULL
LEFT JOIN workspace_members m ON m.workspace_id = d.workspace_id AND m.user_id = $2
LEFT JOIN document_grants g ON g.document_id = d.id AND g.user_id = $2
LEFT JOIN boards b ON b.id = d.board_id AND b.deleted_at IS NULL
LEFT JOIN board_members bg ON bg.board_id = d.board_id AND bg.user_id = $2
WHERE d.id = $1 AND d.deleted_at IS NULL
"""


async def load_facts(db: Database, user_id: str, resource: Resource) -> AccessFacts | None:
    """None when the resource does not exist (or is deleted)."""
    if resource.kind == "workspace":
        row = await db.fetchrow(_WORKSPACE_SQL, resource.id, user_id)
        if row is None:
            return None
        return AccessFacts(str(row["workspace_id"]), WorkspaceRole.parse(row["workspace_role"]))
    if resource.kind == "board":
        row = await db.fetchrow(_BOARD_SQL, resource.id, user_id)
        if row is None:
            return None
        return AccessFacts(
            str(row["workspace_id"]),
            WorkspaceRole.parse(row["workspace_role"]),
            is_private=row["is_private"],
            grant=ResourceRole.parse(row["grant_role"]),
        )
    if resource.kind == "document":
        row = await db.fetchrow(_DOCUMENT_SQL, resource.id, user_id)
        if row is None:
            return None
        workspace_role = WorkspaceRole.parse(row["workspace_role"])
        on_board = row["board_id"] is not None and row["board_private"] is not None
        board_role = None
        if on_board:
            board_role = effective_resource_role(
                AccessFacts(
                    str(row["workspace_id"]),
                    workspace_role,
                    is_private=row["board_private"],
                    grant=ResourceRole.parse(row["board_grant_role"]),
                )
            )
        return AccessFacts(
            str(row["workspace_id"]),
            workspace_role,
            is_private=row["is_private"],
            grant=ResourceRole.parse(row["grant_role"]),
            inherited=board_role,
            inherits=on_board and not row["is_private"],
        )
    raise ValueError(f"unknown resource kind {resource.kind!r}")


async def load_access(ctx: AppContext, user_id: str, resource: Resource) -> Access | None:
    """The caller's effective access (the seam where the Redis permission cache plugs in)."""
    facts = await load_facts(ctx.db, user_id, resource)
    return None if facts is None else decide(facts)


async def can(ctx: AppContext, user_id: str, action: Action, resource: Resource) -> bool:
    access = await load_access(ctx, user_id, resource)
    return access is not None and access.allows(action)


async def require(ctx: AppContext, user_id: str, action: Action, resource: Resource) -> Access:
    """The access if allowed; 404 if the caller cannot even see the resource, else 403."""
    access = await load_access(ctx, user_id, resource)
    if access is None or not access.allows(VIEW_ACTION[resource.kind]):
        raise NotFound(f"{resource.kind} not found")
    if not access.allows(action):
        raise Forbidden(f"not allowed to {action.value.split(':')[1]} this {resource.kind}")
    return access
