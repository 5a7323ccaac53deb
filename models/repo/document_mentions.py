"""Data access for body mentions (models/mentions.py): the scan cursor and the mentions seen."""

from __future__ import annotations

from dataclasses import dataclass

import asyncpg

from models.db import Executor


@dataclass(frozen=True)
class SeenMention:
    document_id: str
    block_id: str
    user_id: str
    mentioned_by: str | None
    seq: int
    outcome: str


async def scan_seq(db: Executor, doc_id: str) -> int | None:
    """How far the document was scanned; None: never."""
    seq = await db.fetchval("SELECT seq FROM document_mention_scans WHERE document_id = $1", doc_id)
    return None if seq is None else int(seq)


async def advance_scan(conn: Executor, doc_id: str, seq: int) -> None:
    """Move the cursor forward (never back: a slower scan of an older state changes nothing)."""
    await conn.execute(
        "INSERT INTO document_mention_scans (document_id, seq) VALUES ($1, $2)"
        " ON CONFLICT (document_id) DO UPDATE SET seq = EXCLUDED.seq, updated_at = now()"
        " WHERE document_mention_scans.seq < EXCLUDED.seq",
        doc_id,
        seq,
    )


async def seen_pairs(db: Executor, doc_id: str) -> set[tuple[str, str]]:
    rows = await db.fetch(
        "SELECT block_id, user_id::text AS user_id FROM document_mentions WHERE document_id = $1",
        doc_id,
    )
    return {(r["block_id"], r["user_id"]) for r in rows}


async def record(conn: asyncpg.Connection, mention: SeenMention) -> bool:
    """Insert the mention; False when it was already there (another node, an earlier scan): the
    unique key is what makes the notification happen once."""
    inserted = await conn.fetchval(
        "INSERT INTO document_mentions"
        " (document_id, block_id, user_id, mentioned_by, seq, outcome)"
        " VALUES ($1, $2, $3, $4, $5, $6)"
        " ON CONFLICT (document_id, block_id, user_id) DO NOTHING RETURNING true",
        mention.document_id,
        mention.block_id,
        mention.user_id,
        mention.mentioned_by,
        mention.seq,
        mention.outcome,
    )
    return bool(inserted)


async def list_mentions(db: Executor, doc_id: str) -> list[SeenMention]:
    rows = await db.fetch(
        "SELECT document_id::text, block_id, user_id::text, mentioned_by::text, seq, outcome"
        " FROM document_mentions WHERE document_id = $1 ORDER BY seq, block_id, user_id",
        doc_id,
    )
    return [SeenMention(*r.values()) for r in rows]


async def active_users(db: Executor, user_ids: list[str]) -> set[str]:
    """The ids (UUID strings) that name active users; anything else an editor wrote is ignored."""
    rows = await db.fetch(
        "SELECT id::text AS id FROM users WHERE id = ANY($1::uuid[]) AND is_active", user_ids
    )
    return {r["id"] for r in rows}
