"""Instance administration of accounts: superusers, the admin flag, deactivation.

Deactivating a user goes through the same revocation path as a password change: in one
transaction `is_active` goes false, `tokens_valid_after` moves to now and every session family is
revoked; then the Redis denylist copy gets the cut-off and the other nodes get the signal that
closes the user's sockets. Login already refuses inactive accounts and refresh refuses revoked
families, so the account is locked out everywhere until an admin activates it again (which
brings no old token back: the cut-off stays).

Every change an admin makes (from the API or the CLI) is audited: an `admin.*` event staged in the
change's own transaction and published by the after-commit outbox on the instance's activity
subject, `collab.workspace.<INSTANCE_AUDIT_ID>.activity` (the nil UUID: instance-level actions
belong to no workspace, and the activity subject is where audit consumers already read).
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Protocol

import asyncpg

from bus.revocations import Revocation, publish_revocation
from core.errors import Conflict, NotFound
from models.db import Database
from models.repo import accounts as accounts_repo
from models.repo import users as users_repo
from services import activity
from services.auth import normalize_email
from services.denylist import Denylist
from services.deps import RevocationDeps
from services.passwords import PasswordHashing
from services.unit_of_work import TransactionDeps, UnitOfWork, unit_of_work

DEACTIVATED_REASON = "deactivated"
INSTANCE_AUDIT_ID = str(uuid.UUID(int=0))


class AccountAdminDeps(RevocationDeps, TransactionDeps, Protocol):
    """The node, or the account commands' context: clients, the denylist copy, the outbox."""

    @property
    def denylist(self) -> Denylist: ...


async def audit(uow: UnitOfWork, action: str, actor_id: str | None, data: dict[str, Any]) -> None:
    """Stage one admin action (`admin.<action>`) on the instance's activity subject;
    `actor_id` None means the command line (whoever runs `collab` on a host). `data` is the
    activity event's open JSON payload (each action names its own keys)."""
    await uow.emit(
        activity.event(
            INSTANCE_AUDIT_ID, f"admin.{action}", actor_id, {**data, "via": _via(actor_id)}
        )
    )


def _via(actor_id: str | None) -> str:
    return "cli" if actor_id is None else "api"


@dataclass(frozen=True)
class AdminUser:
    """An account as an admin sees it (never the password hash)."""

    id: str
    email: str
    display_name: str
    is_active: bool
    is_admin: bool
    created_at: datetime


def public_user(row: Mapping[str, Any]) -> AdminUser:
    """The fields an admin listing shows, from a user row."""
    return AdminUser(
        str(row["id"]),
        row["email"],
        row["display_name"],
        row["is_active"],
        row["is_admin"],
        row["created_at"],
    )


async def find_user(db: Database, ref: str) -> AdminUser:
    """A user by id (UUID) or email; an unknown one is an error, never an empty result."""
    try:
        row = await users_repo.get_user(db, str(uuid.UUID(ref)))
    except ValueError:
        row = await users_repo.get_user_by_email(db, normalize_email(ref))
    if row is None:
        raise NotFound(f"no such user: {ref}", code="user_not_found")
    return public_user(row)


async def list_users(db: Database, *, limit: int, after_email: str = "") -> list[AdminUser]:
    rows = await users_repo.list_users(db, limit=limit, after_email=after_email)
    return [public_user(row) for row in rows]


async def create_superuser(
    deps: TransactionDeps, passwords: PasswordHashing, email: str, password: str, name: str
) -> AdminUser:
    """A new account with the admin flag set; an existing email is a conflict (use
    `set-admin` to promote an existing account)."""
    password_hash = await passwords.hash(password)
    try:
        async with unit_of_work(deps) as uow:
            row = await users_repo.create_user(
                uow.conn, normalize_email(email), password_hash, name.strip()
            )
            promoted = await users_repo.set_admin(uow.conn, str(row["id"]), True)
            assert promoted is not None  # created just above, same transaction
            await audit(uow, "superuser_created", None, {"user_id": str(row["id"])})
    except asyncpg.UniqueViolationError as err:
        raise Conflict("an account with this email already exists", code="email_taken") from err
    return public_user(promoted)


async def set_admin(
    deps: TransactionDeps, ref: str, admin: bool, actor_id: str | None = None
) -> AdminUser:
    user = await find_user(deps.db, ref)
    async with unit_of_work(deps) as uow:
        row = await users_repo.set_admin(uow.conn, user.id, admin)
        if row is None:
            raise NotFound(f"no such user: {ref}", code="user_not_found")
        action = "admin_granted" if admin else "admin_removed"
        await audit(uow, action, actor_id, {"user_id": str(row["id"])})
    return public_user(row)


async def activate(deps: TransactionDeps, ref: str, actor_id: str | None = None) -> AdminUser:
    user = await find_user(deps.db, ref)
    if await accounts_repo.is_deleted(deps.db, user.id):
        # Erased by its owner (services/account_lifecycle.py): nothing left to give back.
        raise Conflict("this account was deleted by its owner", code="account_deleted")
    async with unit_of_work(deps) as uow:
        row = await users_repo.set_active(uow.conn, user.id, True, None)
        if row is None:
            raise NotFound(f"no such user: {ref}", code="user_not_found")
        await audit(uow, "user_activated", actor_id, {"user_id": str(row["id"])})
    return public_user(row)


async def deactivate(deps: AccountAdminDeps, ref: str, actor_id: str | None = None) -> AdminUser:
    """Lock the account out and void every token it holds (see the module docstring). Raises
    `CacheUnavailable` if Redis cannot take its copy: the revocation is committed in Postgres,
    and running the command again is safe."""
    user_id = (await find_user(deps.db, ref)).id
    valid_after = int(time.time())
    async with unit_of_work(deps) as uow:
        row = await users_repo.set_active(
            uow.conn, user_id, False, datetime.fromtimestamp(valid_after, tz=UTC)
        )
        if row is None:
            raise NotFound(f"no such user: {ref}", code="user_not_found")
        families = await users_repo.revoke_user_families(uow.conn, user_id, DEACTIVATED_REASON)
        await audit(uow, "user_deactivated", actor_id, {"user_id": user_id})
    await deps.denylist.deny(family_ids=families, user_valid_after=(user_id, valid_after))
    await publish_revocation(deps.nats, Revocation("session", user_id, family_ids=families))
    return public_user(row)
