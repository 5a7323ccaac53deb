"""Data access for the board event log (`board_events`): the outbox and the `since` replay source."""

from __future__ import annotations

from typing import Any

import asyncpg

from models.db import Database


async def insert_event(
    conn: asyncpg.Connection,
    board_id: str,
    workspace_id: str,
    seq: int,
    event_type: str,
    payload: dict[str, Any],
) -> None:
    await conn.execute(
        "INSERT INTO board_events (board_id, workspace_id, seq, type, payload)"
        " VALUES ($1, $2, $3, $4, $5)",
        board_id,
        workspace_id,
        seq,
        event_type,
        payload,
    )


async def unpublished(db: Database, board_id: str, limit: int) -> list[dict[str, Any]]:
    """Events of one board not yet confirmed on JetStream, oldest first."""
    rows = await db.fetch(
        "SELECT seq, payload FROM board_events WHERE board_id = $1 AND published_at IS NULL"
        " ORDER BY seq LIMIT $2",
        board_id,
        limit,
    )
    return [dict(r) for r in rows]


async def mark_published(db: Database, board_id: str, seqs: list[int]) -> None:
    await db.execute(
        "UPDATE board_events SET published_at = now()"
        " WHERE board_id = $1 AND seq = ANY($2::bigint[]) AND published_at IS NULL",
        board_id,
        seqs,
    )


async def boards_with_unpublished(db: Database, older_than_s: float, limit: int) -> list[str]:
    rows = await db.fetch(
        "SELECT DISTINCT board_id FROM board_events WHERE published_at IS NULL"
        " AND created_at < now() - make_interval(secs => $1) LIMIT $2",
        older_than_s,
        limit,
    )
    return [str(r["board_id"]) for r in rows]


async def events_after(db: Database, board_id: str, after_seq: int, limit: int) -> list[dict]:
    """Payloads of events with seq > `after_seq`, in order (at most `limit`)."""
    rows = await db.fetch(
        "SELECT payload FROM board_events WHERE board_id = $1 AND seq > $2 ORDER BY seq LIMIT $3",
        board_id,
        after_seq,
        limit,
    )
    return [r["payload"] for r in rows]


async def retained_range(db: Database, board_id: str) -> tuple[int | None, int]:
    """(oldest seq still kept or None, the board's current seq) for the `since` decision."""
    row = await db.fetchrow(
        "SELECT (SELECT min(seq) FROM board_events WHERE board_id = $1) AS oldest,"
        " (SELECT event_seq FROM boards WHERE id = $1) AS current",
        board_id,
    )
    assert row is not None  # a SELECT without FROM always yields one row
    return row["oldest"], row["current"] or 0


async def prune(db: Database, older_than_s: float) -> int:
    """Delete published events older than the retention; returns how many went."""
    status = await db.execute(
        "DELETE FROM board_events WHERE published_at IS NOT NULL"
        " AND created_at < now() - make_interval(secs => $1)",
        older_than_s,
    )
    return int(status.split()[-1])
