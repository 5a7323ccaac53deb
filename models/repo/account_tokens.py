"""Data access for single-use account tokens (`account_tokens`) and the verified flag on users."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import asyncpg

from models.db import Database


async def issue(
    conn: asyncpg.Connection,
    user_id: str,
    purpose: str,
    token_hash: str,
    email: str,
    expires_at: datetime,
) -> None:
    """Store a new token, voiding the account's older unused ones of the same purpose (only the
    newest link works)."""
    await conn.execute(
        "UPDATE account_tokens SET used_at = now()"
        " WHERE user_id = $1 AND purpose = $2 AND used_at IS NULL",
        user_id,
        purpose,
    )
    await conn.execute(
        "INSERT INTO account_tokens (user_id, purpose, token_hash, email, expires_at)"
        " VALUES ($1, $2, $3, $4, $5)",
        user_id,
        purpose,
        token_hash,
        email,
        expires_at,
    )


async def find_usable(db: Database, purpose: str, token_hash: str) -> dict[str, Any] | None:
    """The unused, unexpired token of an active account whose address is still the one the link
    went to (read only: checking a link does not spend it)."""
    row = await db.fetchrow(
        "SELECT t.user_id, t.email, t.expires_at FROM account_tokens t"
        " JOIN users u ON u.id = t.user_id"
        " WHERE t.token_hash = $1 AND t.purpose = $2 AND t.used_at IS NULL"
        " AND t.expires_at > now() AND u.is_active AND lower(u.email) = lower(t.email)",
        token_hash,
        purpose,
    )
    return None if row is None else {**dict(row), "user_id": str(row["user_id"])}


async def spend(conn: asyncpg.Connection, purpose: str, token_hash: str) -> dict[str, Any] | None:
    """Mark a usable token used, in the caller's transaction; None if it is not usable (unknown,
    spent, expired, account inactive or its address changed). Two concurrent uses: one wins."""
    row = await conn.fetchrow(
        "UPDATE account_tokens t SET used_at = now() FROM users u"
        " WHERE u.id = t.user_id AND t.token_hash = $1 AND t.purpose = $2"
        " AND t.used_at IS NULL AND t.expires_at > now() AND u.is_active"
        " AND lower(u.email) = lower(t.email)"
        " RETURNING t.user_id, t.email",
        token_hash,
        purpose,
    )
    return None if row is None else {"user_id": str(row["user_id"]), "email": row["email"]}


async def mark_email_verified(
    conn: asyncpg.Connection | Database, user_id: str, email: str
) -> None:
    """Verified now, if the account still has that address and was not verified before."""
    await conn.execute(
        "UPDATE users SET email_verified_at = now(), updated_at = now()"
        " WHERE id = $1 AND lower(email) = lower($2) AND email_verified_at IS NULL",
        user_id,
        email,
    )
