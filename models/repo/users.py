"""Data access for users, token families, refresh tokens and the access-token denylist."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

import asyncpg

from models.db import Database

USER_COLUMNS = (
    "id, email, display_name, is_active, is_admin, email_verified_at, tokens_valid_after,"
    " created_at, updated_at"
)


def user_row(record: asyncpg.Record | None) -> dict[str, Any] | None:
    return None if record is None else dict(record)


async def create_user(
    db: Database | asyncpg.Connection, email: str, password_hash: str, display_name: str
) -> dict:
    """Insert a user; raises asyncpg.UniqueViolationError on a duplicate email."""
    row = await db.fetchrow(
        f"INSERT INTO users (email, password_hash, display_name) VALUES ($1, $2, $3)"
        f" RETURNING {USER_COLUMNS}",
        email,
        password_hash,
        display_name,
    )
    assert row is not None  # INSERT … RETURNING yields the row or raises
    return dict(row)


async def get_user(db: Database, user_id: str) -> dict | None:
    return user_row(await db.fetchrow(f"SELECT {USER_COLUMNS} FROM users WHERE id = $1", user_id))


async def get_users(db: Database, user_ids: list[str]) -> list[dict]:
    rows = await db.fetch(f"SELECT {USER_COLUMNS} FROM users WHERE id = ANY($1::uuid[])", user_ids)
    return [dict(r) for r in rows]


async def get_user_by_email(db: Database, email: str) -> dict | None:
    return user_row(
        await db.fetchrow(f"SELECT {USER_COLUMNS} FROM users WHERE lower(email) = lower($1)", email)
    )


async def get_password_hash(db: Database, email: str) -> tuple[str, str] | None:
    row = await db.fetchrow(
        "SELECT id, password_hash FROM users WHERE lower(email) = lower($1) AND is_active",
        email,
    )
    return None if row is None else (str(row["id"]), row["password_hash"])


async def get_login_by_id(db: Database, user_id: str) -> tuple[str, str] | None:
    """(email, password hash) of a user."""
    row = await db.fetchrow("SELECT email, password_hash FROM users WHERE id = $1", user_id)
    return None if row is None else (row["email"], row["password_hash"])


async def update_profile(db: Database, user_id: str, display_name: str) -> dict:
    row = await db.fetchrow(
        f"UPDATE users SET display_name = $2, updated_at = now() WHERE id = $1"
        f" RETURNING {USER_COLUMNS}",
        user_id,
        display_name,
    )
    assert row is not None  # INSERT … RETURNING yields the row or raises
    return dict(row)


async def set_password(
    conn: asyncpg.Connection, user_id: str, password_hash: str, valid_after: datetime
) -> None:
    await conn.execute(
        "UPDATE users SET password_hash = $2, tokens_valid_after = $3, updated_at = now()"
        " WHERE id = $1",
        user_id,
        password_hash,
        valid_after,
    )


async def replace_password_hash(db: Database, user_id: str, old: str, new: str) -> None:
    """Same password, new hash parameters: no session is revoked; a concurrent password change
    wins (the row is updated only if it still holds `old`)."""
    await db.execute(
        "UPDATE users SET password_hash = $3 WHERE id = $1 AND password_hash = $2",
        user_id,
        old,
        new,
    )


async def create_family(db: Database, user_id: str, user_agent: str | None = None) -> str:
    return str(
        await db.fetchval(
            "INSERT INTO token_families (user_id, user_agent) VALUES ($1, $2) RETURNING id",
            user_id,
            user_agent,
        )
    )


async def store_refresh_token(
    conn: asyncpg.Connection | Database,
    jti: str,
    family_id: str,
    user_id: str,
    expires_at: datetime,
) -> None:
    await conn.execute(
        "INSERT INTO refresh_tokens (id, family_id, user_id, expires_at) VALUES ($1, $2, $3, $4)",
        jti,
        family_id,
        user_id,
        expires_at,
    )


async def claim_refresh_token(conn: asyncpg.Connection, jti: str) -> asyncpg.Record | None:
    """Mark a refresh token used, atomically: exactly one concurrent caller gets the row back.

    Returns None both for an unknown token and for one already used; `refresh_token_state` tells
    them apart.
    """
    return await conn.fetchrow(
        "UPDATE refresh_tokens t SET used_at = now() FROM token_families f"
        " WHERE t.id = $1 AND t.used_at IS NULL AND f.id = t.family_id AND f.revoked_at IS NULL"
        " AND t.expires_at > now() RETURNING t.family_id, t.user_id",
        jti,
    )


async def refresh_token_exists(conn: asyncpg.Connection, jti: str) -> bool:
    return bool(await conn.fetchval("SELECT 1 FROM refresh_tokens WHERE id = $1", jti))


async def revoke_family(conn: asyncpg.Connection | Database, family_id: str, reason: str) -> None:
    await conn.execute(
        "UPDATE token_families SET revoked_at = now(), revoked_reason = $2"
        " WHERE id = $1 AND revoked_at IS NULL",
        family_id,
        reason,
    )


async def revoke_user_families(conn: asyncpg.Connection, user_id: str, reason: str) -> list[str]:
    rows = await conn.fetch(
        "UPDATE token_families SET revoked_at = now(), revoked_reason = $2"
        " WHERE user_id = $1 AND revoked_at IS NULL RETURNING id",
        user_id,
        reason,
    )
    return [str(r["id"]) for r in rows]


async def deny_access_token(db: Database, jti: str, expires_at: datetime) -> None:
    await db.execute(
        "INSERT INTO revoked_access_tokens (id, expires_at) VALUES ($1, $2)"
        " ON CONFLICT (id) DO NOTHING",
        jti,
        expires_at,
    )


async def token_revocation_state(
    db: Database, user_id: str, family_id: str, jti: str
) -> asyncpg.Record | None:
    """Everything that can invalidate a signature-valid access token, in one round trip."""
    return await db.fetchrow(
        "SELECT u.is_active, u.tokens_valid_after,"
        " (SELECT revoked_at FROM token_families WHERE id = $2) AS family_revoked_at,"
        " EXISTS (SELECT 1 FROM revoked_access_tokens WHERE id = $3) AS jti_revoked"
        " FROM users u WHERE u.id = $1",
        user_id,
        family_id,
        jti,
    )


@dataclass(frozen=True)
class ActiveRevocations:
    """Every revocation that can still reject a live access token."""

    jtis: list[tuple[str, datetime]]  # denylisted access tokens and their expiry
    family_ids: list[str]  # families revoked since the cut-off
    users_valid_after: list[tuple[str, datetime]]  # users whose older tokens are all void


async def active_revocations(db: Database, since: datetime) -> ActiveRevocations:
    """Revocations newer than `since` (the oldest moment a live access token can be issued at);
    older ones can only match tokens that have expired."""
    async with db.transaction() as conn:
        # One snapshot for the three reads, so the copy is a consistent point in time.
        await conn.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ READ ONLY")
        jtis = await conn.fetch(
            "SELECT id, expires_at FROM revoked_access_tokens WHERE expires_at > now()"
        )
        families = await conn.fetch("SELECT id FROM token_families WHERE revoked_at > $1", since)
        # A cut-off at or before the account's creation (the column's default) voids nothing.
        users = await conn.fetch(
            "SELECT id, tokens_valid_after FROM users"
            " WHERE tokens_valid_after > $1 AND tokens_valid_after > created_at",
            since,
        )
    return ActiveRevocations(
        jtis=[(str(r["id"]), r["expires_at"]) for r in jtis],
        family_ids=[str(r["id"]) for r in families],
        users_valid_after=[(str(r["id"]), r["tokens_valid_after"]) for r in users],
    )


async def list_users(db: Database, *, limit: int, after_email: str = "") -> list[dict]:
    """Users in email order, a page at a time (keyset on lower(email))."""
    rows = await db.fetch(
        f"SELECT {USER_COLUMNS} FROM users WHERE lower(email) > lower($1)"
        " ORDER BY lower(email) LIMIT $2",
        after_email,
        limit,
    )
    return [dict(r) for r in rows]


async def set_active(
    conn: asyncpg.Connection, user_id: str, active: bool, valid_after: datetime | None
) -> dict | None:
    """Flip `is_active`; with `valid_after`, every access token issued before it is void too."""
    row = await conn.fetchrow(
        f"UPDATE users SET is_active = $2, updated_at = now(),"
        f" tokens_valid_after = COALESCE($3, tokens_valid_after)"
        f" WHERE id = $1 RETURNING {USER_COLUMNS}",
        user_id,
        active,
        valid_after,
    )
    return user_row(row)


async def set_admin(db: Database | asyncpg.Connection, user_id: str, admin: bool) -> dict | None:
    row = await db.fetchrow(
        f"UPDATE users SET is_admin = $2, updated_at = now() WHERE id = $1 RETURNING {USER_COLUMNS}",
        user_id,
        admin,
    )
    return user_row(row)


async def is_admin(db: Database, user_id: str) -> bool:
    """An active instance admin (a deactivated admin is no admin)."""
    return bool(
        await db.fetchval("SELECT is_admin AND is_active FROM users WHERE id = $1", user_id)
    )
