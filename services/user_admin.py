"""Instance administration of accounts: superusers, the admin flag, deactivation.

Deactivating a user goes through the same revocation path as a password change: in one
transaction `is_active` goes false, `tokens_valid_after` moves to now and every session family is
revoked; then the Redis denylist copy gets the cut-off and the other nodes get the signal that
closes the user's sockets. Login already refuses inactive accounts and refresh refuses revoked
families, so the account is locked out everywhere until an admin activates it again (which
brings no old token back: the cut-off stays).
"""

from __future__ import annotations

import time
import uuid
from datetime import UTC, datetime
from typing import Any

import asyncpg

from bus.revocations import Revocation, publish_revocation
from core.errors import Conflict, NotFound
from models.db import Database
from models.repo import users as users_repo
from services.auth import normalize_email
from services.denylist import Denylist
from services.deps import RevocationDeps
from services.passwords import PasswordHashing

DEACTIVATED_REASON = "deactivated"


def public_user(row: dict[str, Any]) -> dict[str, Any]:
    """The fields an admin listing shows (never the password hash)."""
    return {
        "id": str(row["id"]),
        "email": row["email"],
        "display_name": row["display_name"],
        "is_active": row["is_active"],
        "is_admin": row["is_admin"],
        "created_at": row["created_at"],
    }


async def find_user(db: Database, ref: str) -> dict[str, Any]:
    """A user by id (UUID) or email; an unknown one is an error, never an empty result."""
    try:
        row = await users_repo.get_user(db, str(uuid.UUID(ref)))
    except ValueError:
        row = await users_repo.get_user_by_email(db, normalize_email(ref))
    if row is None:
        raise NotFound(f"no such user: {ref}", code="user_not_found")
    return row


async def list_users(db: Database, *, limit: int, after_email: str = "") -> list[dict[str, Any]]:
    rows = await users_repo.list_users(db, limit=limit, after_email=after_email)
    return [public_user(row) for row in rows]


async def create_superuser(
    db: Database, passwords: PasswordHashing, email: str, password: str, display_name: str
) -> dict[str, Any]:
    """A new account with the admin flag set; an existing email is a conflict (use
    `set-admin` to promote an existing account)."""
    password_hash = await passwords.hash(password)
    try:
        row = await users_repo.create_user(
            db, normalize_email(email), password_hash, display_name.strip()
        )
    except asyncpg.UniqueViolationError as err:
        raise Conflict("an account with this email already exists", code="email_taken") from err
    promoted = await users_repo.set_admin(db, str(row["id"]), True)
    assert promoted is not None  # created just above
    return public_user(promoted)


async def set_admin(db: Database, ref: str, admin: bool) -> dict[str, Any]:
    user = await find_user(db, ref)
    row = await users_repo.set_admin(db, str(user["id"]), admin)
    if row is None:
        raise NotFound(f"no such user: {ref}", code="user_not_found")
    return public_user(row)


async def activate(db: Database, ref: str) -> dict[str, Any]:
    user = await find_user(db, ref)
    async with db.transaction() as conn:
        row = await users_repo.set_active(conn, str(user["id"]), True, None)
    if row is None:
        raise NotFound(f"no such user: {ref}", code="user_not_found")
    return public_user(row)


async def deactivate(deps: RevocationDeps, denylist: Denylist, ref: str) -> dict[str, Any]:
    """Lock the account out and void every token it holds (see the module docstring). Raises
    `CacheUnavailable` if Redis cannot take its copy: the revocation is committed in Postgres,
    and running the command again is safe."""
    user = await find_user(deps.db, ref)
    user_id = str(user["id"])
    valid_after = int(time.time())
    async with deps.db.transaction() as conn:
        row = await users_repo.set_active(
            conn, user_id, False, datetime.fromtimestamp(valid_after, tz=UTC)
        )
        families = await users_repo.revoke_user_families(conn, user_id, DEACTIVATED_REASON)
    if row is None:
        raise NotFound(f"no such user: {ref}", code="user_not_found")
    await denylist.deny(family_ids=families, user_valid_after=(user_id, valid_after))
    await publish_revocation(deps.nats, Revocation("session", user_id, family_ids=families))
    return public_user(row)
