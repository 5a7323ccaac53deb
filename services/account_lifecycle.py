"""What a user can do to their own account: see and end their sessions, deactivate the account,
delete it.

* **Sessions** are refresh-token families (one per login). Listing shows those that can still
  refresh; revoking one (or all but the caller's) goes through the same path as a logout: the
  family revoked in Postgres, the Redis denylist copy, and the cross-node signal that closes the
  session's open sockets (4401) on every node. Its refresh token is refused (401) from then on.
* **Deactivating** locks the account like an admin's deactivation (every session revoked, login
  refused) — but only an instance admin can activate it again. The password is asked again.
* **Deleting** asks for the password again, and is refused (409 `sole_owner`, naming the
  workspaces) while the user is the only Owner of a live workspace: ownership must be transferred
  or the workspace deleted first, so no workspace is left without an owner. Then, in one
  transaction, the account is erased (email — free for a new account —, name, password, admin
  flag), its memberships and grants removed (`member.left` on each workspace's activity subject),
  its sessions revoked. The row stays, anonymised as "Deleted user", so documents, cards,
  versions and comments keep their author id. Soft-deleted workspaces do not block a deletion and
  are purged as scheduled.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime
from typing import Any

from bus.revocations import Revocation, publish_revocation
from core.errors import Conflict, NotFound, Unavailable
from models.cache import CacheUnavailable
from models.repo import accounts as accounts_repo
from models.repo import sessions as sessions_repo
from models.repo import users as users_repo
from services import activity
from services.auth import AuthService
from services.auth_guard import Principal
from services.deps import Deps
from services.unit_of_work import unit_of_work

REVOKED_BY_OWNER = "revoked_by_owner"
DEACTIVATED_BY_OWNER = "deactivated_by_owner"
DELETED = "account_deleted"


async def list_sessions(ctx: Deps, principal: Principal) -> list[dict[str, Any]]:
    rows = await sessions_repo.list_active(ctx.db, principal.user_id)
    return [{**row, "current": row["id"] == principal.family_id} for row in rows]


async def revoke_session(ctx: Deps, principal: Principal, session_id: str) -> None:
    """Another user's session is a 404, like an unknown one (existence is not revealed)."""
    async with ctx.db.transaction() as conn:
        if await sessions_repo.family_owner(conn, session_id) != principal.user_id:
            raise NotFound("no such session", code="session_not_found")
        await users_repo.revoke_family(conn, session_id, REVOKED_BY_OWNER)
    await _signal(ctx, principal.user_id, [session_id])


async def revoke_other_sessions(ctx: Deps, principal: Principal) -> int:
    async with ctx.db.transaction() as conn:
        families = await sessions_repo.revoke_others(
            conn, principal.user_id, principal.family_id, REVOKED_BY_OWNER
        )
    await _signal(ctx, principal.user_id, families)
    return len(families)


async def deactivate_account(
    ctx: Deps, auth: AuthService, principal: Principal, password: str, ip: str
) -> None:
    await auth.reauthenticate(principal.user_id, password, ip)
    valid_after = int(time.time())
    async with ctx.db.transaction() as conn:
        await users_repo.set_active(conn, principal.user_id, False, _at(valid_after))
        families = await users_repo.revoke_user_families(
            conn, principal.user_id, DEACTIVATED_BY_OWNER
        )
    await _signal(ctx, principal.user_id, families, valid_after)


async def delete_account(
    ctx: Deps, auth: AuthService, principal: Principal, password: str, ip: str
) -> None:
    await auth.reauthenticate(principal.user_id, password, ip)
    user_id = principal.user_id
    valid_after = int(time.time())
    async with unit_of_work(ctx) as uow:
        owned = await accounts_repo.sole_owned_workspaces(uow.conn, user_id)
        if owned:
            names = ", ".join(f"{w['name']} ({w['id']})" for w in owned)
            raise Conflict(
                f"you are the only owner of: {names}; transfer ownership or delete them first",
                code="sole_owner",
                fields={"workspace_ids": [w["id"] for w in owned]},
            )
        memberships = await accounts_repo.memberships_of(uow.conn, user_id)
        if not await accounts_repo.erase_user(uow.conn, user_id, _at(valid_after)):
            raise NotFound("no such user", code="user_not_found")
        families = await users_repo.revoke_user_families(uow.conn, user_id, DELETED)
        for workspace_id, role in memberships:
            data = {"user_id": user_id, "role": role}
            await uow.emit(activity.event(workspace_id, "member.left", user_id, data))
    await _signal(ctx, user_id, families, valid_after)


def _at(epoch_s: int) -> datetime:
    return datetime.fromtimestamp(epoch_s, tz=UTC)


async def _signal(
    ctx: Deps, user_id: str, families: list[str], valid_after: int | None = None
) -> None:
    """After the commit: the Redis copy (503 if Redis cannot take it; Postgres already decides),
    then every node closes the sessions' sockets."""
    try:
        await ctx.denylist.deny(
            family_ids=families,
            user_valid_after=None if valid_after is None else (user_id, valid_after),
        )
    except CacheUnavailable as err:
        raise Unavailable("revocation cache unavailable, retry") from err
    await publish_revocation(ctx.nats, Revocation("session", user_id, family_ids=families))
