"""Data access for the outbox: side effects written in the transaction that causes them."""

from __future__ import annotations

from typing import Any

import asyncpg

from models.db import Database


async def insert(conn: asyncpg.Connection, kind: str, payload: dict[str, Any]) -> str:
    return str(
        await conn.fetchval(
            "INSERT INTO outbox (kind, payload) VALUES ($1, $2) RETURNING id", kind, payload
        )
    )


async def mark_processed(db: Database | asyncpg.Connection, ids: list[str]) -> None:
    await db.execute(
        "UPDATE outbox SET processed_at = now() WHERE id = ANY($1::uuid[]) AND processed_at IS NULL",
        ids,
    )


async def claim_pending(
    conn: asyncpg.Connection, kind: str, older_than_s: float, limit: int
) -> list[asyncpg.Record]:
    """Unprocessed rows of `kind`, locked for this transaction; other relays skip them."""
    return await conn.fetch(
        "SELECT id, payload, attempts FROM outbox"
        " WHERE kind = $1 AND processed_at IS NULL"
        " AND available_at < now() - make_interval(secs => $2)"
        " ORDER BY available_at LIMIT $3 FOR UPDATE SKIP LOCKED",
        kind,
        older_than_s,
        limit,
    )


async def record_failure(conn: asyncpg.Connection, outbox_id: str, error: str) -> None:
    await conn.execute(
        "UPDATE outbox SET attempts = attempts + 1, last_error = $2 WHERE id = $1",
        outbox_id,
        error[:1000],
    )
