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


async def retry_later(conn: asyncpg.Connection, outbox_id: str, error: str, delay_s: float) -> None:
    """Count a failed delivery and hide the row from `claim_pending` for `delay_s` seconds."""
    await conn.execute(
        "UPDATE outbox SET attempts = attempts + 1, last_error = $2,"
        " available_at = now() + make_interval(secs => $3) WHERE id = $1",
        outbox_id,
        error[:1000],
        delay_s,
    )


async def mark_failed(
    conn: asyncpg.Connection | Database,
    outbox_id: str,
    error: str,
    drop_keys: tuple[str, ...] = (),
) -> None:
    """Give up on a row: processed (never claimed again) and failed, with the last error;
    `drop_keys` are removed from its payload (secrets it no longer needs)."""
    await conn.execute(
        "UPDATE outbox SET attempts = attempts + 1, last_error = $2,"
        " processed_at = now(), failed_at = now(), payload = payload - $3::text[] WHERE id = $1",
        outbox_id,
        error[:1000],
        list(drop_keys),
    )


async def mark_sent(
    conn: asyncpg.Connection | Database, outbox_id: str, drop_keys: tuple[str, ...] = ()
) -> None:
    await conn.execute(
        "UPDATE outbox SET attempts = attempts + 1, processed_at = now(),"
        " payload = payload - $2::text[] WHERE id = $1",
        outbox_id,
        list(drop_keys),
    )


async def lease_pending(
    db: Database, kind: str, limit: int, lease_s: float
) -> list[asyncpg.Record]:
    """Take due unprocessed rows of `kind` for `lease_s` seconds, in one short statement.

    For slow side effects (an SMTP send): no transaction stays open while they run; a row whose
    worker died becomes due again when its lease ends, and other workers skip leased rows."""
    return await db.fetch(
        "UPDATE outbox SET available_at = now() + make_interval(secs => $3)"
        " WHERE id IN (SELECT id FROM outbox WHERE kind = $1 AND processed_at IS NULL"
        " AND available_at <= now() ORDER BY available_at LIMIT $2 FOR UPDATE SKIP LOCKED)"
        " RETURNING id, payload, attempts",
        kind,
        limit,
        lease_s,
    )
