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
  - A non-private document on a board without its own grant inherits the caller's role on the
    board (a private document is visible only to its explicit grantees and Admins).
  - A sub-page inherits its parent's private flag and grants unless it sets its own: the
    nearest `is_private` that is not null and the nearest grant up the page chain count.
  - Default for Members: editor on non-private resources; nothing on private ones.
  - Default for Guests: nothing (they see only what is shared with them explicitly).
  The rules are data (`RESOURCE_RULES`): `effective_resource_role` evaluates them in Python and
  `resource_role_sql` compiles the same table to a SQL CASE for the listings, so there is one rule.
* Outsiders (not a member of the resource's workspace) and missing resources get 404: a workspace's
  existence is not revealed. Members of the workspace who lack the right, including the right to
  view a private board or document, get 403.
* `load_access` caches decisions in Redis (`services/permissions_cache.py`); any change to a
  membership, role, grant or private flag must call the invalidation functions there.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from enum import IntEnum, StrEnum
from typing import TYPE_CHECKING, Any, Literal

from core.errors import Forbidden, NotFound
from models.db import Database, Executor
from models.repo import users as users_repo
from services import permissions_cache

if TYPE_CHECKING:
    from services.deps import Deps


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
    WORKSPACE_TRANSFER_OWNERSHIP = "workspace:transfer_ownership"
    BOARD_VIEW = "board:view"
    BOARD_COMMENT = "board:comment"
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
    Action.WORKSPACE_TRANSFER_OWNERSHIP: WorkspaceRole.OWNER,
    Action.BOARD_VIEW: ResourceRole.VIEWER,
    Action.BOARD_COMMENT: ResourceRole.COMMENTER,
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

    def to_cache(self) -> dict[str, Any]:
        """The decision as the JSON stored in Redis (`services/permissions_cache.py`)."""
        return {
            "workspace_id": self.workspace_id,
            "workspace_role": self.workspace_role.label if self.workspace_role else None,
            "resource_role": self.resource_role.label if self.resource_role else None,
        }

    @classmethod
    def from_cache(cls, raw: dict[str, Any]) -> Access:
        return cls(
            raw["workspace_id"],
            WorkspaceRole.parse(raw["workspace_role"]),
            ResourceRole.parse(raw["resource_role"]),
        )


@dataclass(frozen=True)
class Rule:
    """One line of the decision table: the first rule that applies gives the effective role."""

    gives: ResourceRole | Literal["grant", "inherited"]
    min_workspace_role: WorkspaceRole = WorkspaceRole.GUEST
    requires: Literal["grant", "inheritance", "not_private"] | None = None


# Evaluated in order for callers who are members of the resource's workspace (non-members get
# nothing). A rule whose outcome is "inherited" with no inherited role denies: a private board
# keeps its documents from the members who cannot see the board.
RESOURCE_RULES: tuple[Rule, ...] = (
    # Owners and Admins manage everything in their workspace, private or not.
    Rule(ResourceRole.MANAGER, min_workspace_role=WorkspaceRole.ADMIN),
    # An explicit grant narrows or widens the default.
    Rule("grant", requires="grant"),
    # A non-private document on a board follows the caller's role on the board.
    Rule("inherited", requires="inheritance"),
    # Members edit what is not private.
    Rule(ResourceRole.EDITOR, min_workspace_role=WorkspaceRole.MEMBER, requires="not_private"),
)


def _rule_applies(rule: Rule, facts: AccessFacts) -> bool:
    assert facts.workspace_role is not None
    if facts.workspace_role < rule.min_workspace_role:
        return False
    if rule.requires == "grant":
        return facts.grant is not None
    if rule.requires == "inheritance":
        return facts.inherits
    if rule.requires == "not_private":
        return not facts.is_private
    return True


def _rule_outcome(rule: Rule, facts: AccessFacts) -> ResourceRole | None:
    if rule.gives == "grant":
        return facts.grant
    if rule.gives == "inherited":
        return facts.inherited
    return rule.gives


def effective_resource_role(facts: AccessFacts) -> ResourceRole | None:
    """`RESOURCE_RULES` evaluated on one resource's facts."""
    if facts.workspace_role is None:
        return None
    for rule in RESOURCE_RULES:
        if _rule_applies(rule, facts):
            return _rule_outcome(rule, facts)
    return None


def decide(facts: AccessFacts) -> Access:
    return Access(facts.workspace_id, facts.workspace_role, effective_resource_role(facts))


# --- the same rules as SQL (listings filter by visibility in one query) -------------------------


@dataclass(frozen=True)
class SqlFacts:
    """SQL expressions for the facts of `AccessFacts`, as columns of a listing query."""

    workspace_role: str
    grant: str
    is_private: str
    inherits: str = "false"
    inherited: str = "NULL"


def _sql_labels(roles: list[WorkspaceRole] | list[ResourceRole]) -> str:
    return ", ".join(f"'{role.label}'" for role in roles)


def _rule_condition_sql(rule: Rule, f: SqlFacts) -> str:
    conditions = []
    if rule.min_workspace_role > WorkspaceRole.GUEST:
        allowed = [role for role in WorkspaceRole if role >= rule.min_workspace_role]
        conditions.append(f"{f.workspace_role} IN ({_sql_labels(allowed)})")
    if rule.requires == "grant":
        conditions.append(f"{f.grant} IS NOT NULL")
    elif rule.requires == "inheritance":
        conditions.append(f"({f.inherits})")
    elif rule.requires == "not_private":
        conditions.append(f"NOT {f.is_private}")
    return " AND ".join(conditions) or "true"


def resource_role_sql(f: SqlFacts) -> str:
    """`RESOURCE_RULES` compiled to a SQL CASE yielding the effective role label (or NULL)."""
    whens = [f"WHEN {f.workspace_role} IS NULL THEN NULL"]
    for rule in RESOURCE_RULES:
        if rule.gives == "grant":
            outcome = f.grant
        elif rule.gives == "inherited":
            outcome = f"({f.inherited})"
        else:
            outcome = f"'{rule.gives.label}'"
        whens.append(f"WHEN {_rule_condition_sql(rule, f)} THEN {outcome}")
    return "CASE " + " ".join(whens) + " ELSE NULL END"


def board_role_sql(workspace_role: str, *, board: str = "b", grant: str = "g.role") -> str:
    """The caller's effective role on board `board` (joined with the caller's `board_members` row
    giving `grant`); `workspace_role` is an expression for the caller's workspace role label."""
    return resource_role_sql(
        SqlFacts(workspace_role=workspace_role, grant=grant, is_private=f"{board}.is_private")
    )


# Nested pages: a sub-page inherits its parent's privacy and grants unless it sets its own. The
# effective private flag is the nearest non-null `is_private` up the page chain (none: not
# private); the effective grant is the caller's nearest grant up the chain. `{document}` is the
# document's alias in the outer query, `{user}` the caller's id parameter. Joined as `eff`.
DOCUMENT_CHAIN_JOIN = """
LEFT JOIN LATERAL (
  WITH RECURSIVE chain (id, parent_id, is_private, depth) AS (
    SELECT {document}.id, {document}.parent_id, {document}.is_private, 0
    UNION ALL
    SELECT p.id, p.parent_id, p.is_private, chain.depth + 1
    FROM documents p JOIN chain ON p.id = chain.parent_id
    WHERE chain.depth < 1000
  )
  SELECT
    coalesce((SELECT c.is_private FROM chain c WHERE c.is_private IS NOT NULL
              ORDER BY c.depth LIMIT 1), false) AS is_private,
    (SELECT cg.role FROM chain c
       JOIN document_grants cg ON cg.document_id = c.id AND cg.user_id = {user}
     ORDER BY c.depth LIMIT 1) AS grant_role
) eff ON true
"""


def document_chain_join(*, document: str = "d", user: str = "$2") -> str:
    return DOCUMENT_CHAIN_JOIN.format(document=document, user=user)


def document_role_sql(
    workspace_role: str,
    *,
    board: str = "b",
    board_grant: str = "bg.role",
) -> str:
    """The caller's effective role on a document, with the page-chain inheritance and the board
    inheritance of `load_facts`: needs `document_chain_join()` (as `eff`), the document's board
    (`board`, deleted or not) and the caller's `board_members` row on it (`board_grant`)."""
    return resource_role_sql(
        SqlFacts(
            workspace_role=workspace_role,
            grant="eff.grant_role",
            is_private="eff.is_private",
            inherits=f"{board}.id IS NOT NULL AND NOT eff.is_private",
            inherited=board_role_sql(workspace_role, board=board, grant=board_grant),
        )
    )


def allows_sql(role_sql: str, action: Action) -> str:
    """A SQL predicate: the effective role `role_sql` is enough for `action`."""
    needed = CAPABILITIES[action]
    if not isinstance(needed, ResourceRole):
        raise ValueError(f"{action} is not a board or document action")
    enough = [role for role in ResourceRole if role >= needed]
    return f"({role_sql}) IN ({_sql_labels(enough)})"


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

_DOCUMENT_SQL = f"""
SELECT d.workspace_id, m.role AS workspace_role, eff.is_private, eff.grant_role,
       d.board_id, b.is_private AS board_private, bg.role AS board_grant_role
FROM documents d
JOIN workspaces w ON w.id = d.workspace_id AND w.deleted_at IS NULL
LEFT JOIN workspace_members m ON m.workspace_id = d.workspace_id AND m.user_id = $2
{document_chain_join()}
-- The board's deleted_at is deliberately not checked: documents of a soft-deleted private board
-- must not fall back to the workspace default (that would show them to every member).
LEFT JOIN boards b ON b.id = d.board_id
LEFT JOIN board_members bg ON bg.board_id = d.board_id AND bg.user_id = $2
WHERE d.id = $1 AND d.deleted_at IS NULL
"""


async def load_facts(db: Executor, user_id: str, resource: Resource) -> AccessFacts | None:
    """None when the resource does not exist (or is deleted). `db` may be a transaction's
    connection: the facts are then what that transaction sees (notifications decide so)."""
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


async def load_access(ctx: Deps, user_id: str, resource: Resource) -> Access | None:
    """The caller's effective access; None when the resource does not exist (or is deleted).

    Served from the Redis permission cache when it holds a current decision; otherwise decided from
    Postgres (also whenever Redis is unavailable: never a default "allow") and cached. An id that
    is not a UUID names nothing (None), whatever path it came from (HTTP, WebSocket, a job).
    """
    try:
        resource = Resource(resource.kind, str(uuid.UUID(str(resource.id))))
        user_id = str(uuid.UUID(str(user_id)))
    except ValueError:
        return None
    cached = await permissions_cache.lookup(ctx, user_id, resource.kind, resource.id)
    if cached is not None and cached.value is not None:
        return Access.from_cache(cached.value)
    facts = await load_facts(ctx.db, user_id, resource)
    if facts is None:
        return None
    access = decide(facts)
    if cached is not None:
        await permissions_cache.store(
            ctx,
            user_id,
            resource.kind,
            resource.id,
            access.workspace_id,
            cached.stamp,
            access.to_cache(),
        )
    return access


async def can(ctx: Deps, user_id: str, action: Action, resource: Resource) -> bool:
    access = await load_access(ctx, user_id, resource)
    return access is not None and access.allows(action)


async def require(ctx: Deps, user_id: str, action: Action, resource: Resource) -> Access:
    """The access if allowed; 404 for outsiders and missing resources, 403 for members without it."""
    access = await load_access(ctx, user_id, resource)
    if access is None or access.workspace_role is None:
        raise NotFound(f"{resource.kind} not found")
    if not access.allows(action):
        raise Forbidden(
            f"not allowed to {action.value.split(':')[1]} this {resource.kind}",
            code="forbidden",
        )
    return access


async def require_instance_admin(db: Database, user_id: str) -> None:
    """The admin API's one rule: an active instance admin (`users.is_admin`, set by `collab
    createsuperuser` / `collab users set-admin`), read fresh on every call — a flag removed or an
    account deactivated takes effect on the next request, with no cache to expire. Everyone else
    signed in gets 403 (the admin API's existence is documented, nothing to hide)."""
    if not await users_repo.is_admin(db, user_id):
        raise Forbidden("instance admins only", code="admin_only")
