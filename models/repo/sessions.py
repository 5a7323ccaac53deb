"""Data access for login sessions (refresh-token families) as their owner sees them, and the
cleanup of expired session bookkeeping."""

from __future__ import annotations

from typing import Any

import asyncpg

from models.db import Database, Executor

SESSION_COLUMNS = (
    "f.id, f.user_agent, f.created_at, f.revoked_at,"
    " (SELECT max(t.created_at) FROM refresh_tokens t WHERE t.family_id = f.id) AS last_used_at,"
    " (SELECT max(t.expires_at) FROM refresh_tokens t WHERE t.family_id = f.id) AS expires_at"
)


async def list_active(db: Database, user_id: str) -> list[dict[str, Any]]:
    """The user's sessions that can still refresh: not revoked, with an unexpired refresh token.
    `last_used_at` is the last login or refresh (when its newest refresh token was issued)."""
    rows = await db.fetch(
        f"SELECT {SESSION_COLUMNS} FROM token_families f"
        " WHERE f.user_id = $1 AND f.revoked_at IS NULL AND EXISTS ("
        "  SELECT 1 FROM refresh_tokens t WHERE t.family_id = f.id AND t.expires_at > now()"
        "  AND t.used_at IS NULL)"
        " ORDER BY last_used_at DESC NULLS LAST, f.id",
        user_id,
    )
    return [{**dict(r), "id": str(r["id"])} for r in rows]


async def family_owner(conn: Executor, family_id: str) -> str | None:
    value = await conn.fetchval("SELECT user_id FROM token_families WHERE id = $1", family_id)
    return None if value is None else str(value)


async def revoke_others(
    conn: asyncpg.Connection, user_id: str, keep: str, reason: str
) -> list[str]:
    rows = await conn.fetch(
        "UPDATE token_families SET revoked_at = now(), revoked_reason = $3"
        " WHERE user_id = $1 AND id <> $2 AND revoked_at IS NULL RETURNING id",
        user_id,
        keep,
        reason,
    )
    return [str(r["id"]) for r in rows]


# --- cleanup (the `cleanup_expired_sessions` job) ---------------------------------------------


async def delete_expired_refresh_tokens(db: Database, grace_s: float, limit: int) -> int:
    """Refresh tokens expired more than `grace_s` ago (a token past its `exp` is refused by its
    signature check before any lookup, so its row decides nothing any more)."""
    status = await db.execute(
        "DELETE FROM refresh_tokens WHERE id IN (SELECT id FROM refresh_tokens"
        " WHERE expires_at < now() - make_interval(secs => $1) LIMIT $2)",
        float(grace_s),
        limit,
    )
    return int(status.split()[-1])


async def delete_dead_families(db: Database, grace_s: float, limit: int) -> int:
    """Sessions with no refresh token alive within `grace_s` (the access-token lifetime): no token
    of theirs can pass any more, so their revocation mark is no longer needed either. A younger
    revoked family stays — deleting it would make its last access tokens valid again."""
    status = await db.execute(
        "DELETE FROM token_families WHERE id IN (SELECT f.id FROM token_families f"
        " WHERE f.created_at < now() - make_interval(secs => $1) AND NOT EXISTS ("
        "  SELECT 1 FROM refresh_tokens t WHERE t.family_id = f.id"
        "  AND t.expires_at >= now() - make_interval(secs => $1))"
        " AND (f.revoked_at IS NULL OR f.revoked_at < now() - make_interval(secs => $1))"
        " LIMIT $2)",
        float(grace_s),
        limit,
    )
    return int(status.split()[-1])


async def delete_expired_denylist_rows(db: Database, limit: int) -> int:
    """Denylisted access tokens past their own expiry (they fail the signature check anyway)."""
    status = await db.execute(
        "DELETE FROM revoked_access_tokens WHERE id IN (SELECT id FROM revoked_access_tokens"
        " WHERE expires_at < now() LIMIT $1)",
        limit,
    )
    return int(status.split()[-1])


async def delete_expired_account_tokens(db: Database, limit: int) -> int | None:
    """Expired password-reset / email-verification tokens, if that table exists (None if not)."""
    if await db.fetchval("SELECT to_regclass('account_tokens')") is None:
        return None
    status = await db.execute(
        "DELETE FROM account_tokens WHERE id IN (SELECT id FROM account_tokens"
        " WHERE expires_at < now() LIMIT $1)",
        limit,
    )
    return int(status.split()[-1])
