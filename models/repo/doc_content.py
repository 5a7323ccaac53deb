"""Data access for the blocks projection and the snapshot job's compaction bookkeeping."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import asyncpg

from models.db import Executor


@dataclass(frozen=True)
class BlockRow:
    """One block as projected into Postgres (`blocks` table)."""

    block_id: str
    parent_id: str | None
    position: int
    depth: int
    # Ids from the top-level ancestor down to this block (inclusive): subtree = `path @> {id}`.
    path: list[str]
    type: str
    content: dict[str, Any] = field(default_factory=dict)
    text: str = ""  # the block's own plain text (search)


# --- blocks projection --------------------------------------------------------------------------


async def replace_blocks(
    conn: asyncpg.Connection, doc_id: str, seq: int, rows: list[BlockRow]
) -> bool:
    """Make the projection reflect the document at `seq`; False (nothing written) if it already
    reflects `seq` or newer. The projection row is locked by the upsert, so concurrent refreshes
    of one document serialise and the newest wins."""
    moved = await conn.fetchval(
        "INSERT INTO document_projections (document_id, seq) VALUES ($1, $2)"
        " ON CONFLICT (document_id) DO UPDATE SET seq = EXCLUDED.seq, updated_at = now()"
        " WHERE document_projections.seq < EXCLUDED.seq RETURNING seq",
        doc_id,
        seq,
    )
    if moved is None:
        return False
    await conn.execute("DELETE FROM blocks WHERE document_id = $1", doc_id)
    if rows:
        # executemany pipelines the inserts in one round trip per batch (COPY would be faster but
        # has no binary encoder for the jsonb text codec the pool installs).
        await conn.executemany(
            "INSERT INTO blocks"
            " (document_id, block_id, parent_id, position, depth, path, type, content, text)"
            " VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
            [
                (
                    doc_id,
                    *(r.block_id, r.parent_id, r.position, r.depth, r.path, r.type),
                    *(r.content, r.text),
                )
                for r in rows
            ],
        )
    return True


async def reset_projection(conn: asyncpg.Connection, doc_id: str) -> None:
    """Let the next refresh rebuild the projection at the same seq (the document now reads its
    blocks from another fragment)."""
    await conn.execute("UPDATE document_projections SET seq = -1 WHERE document_id = $1", doc_id)


async def projection_covers(db: Executor, doc_id: str, seq: int) -> bool:
    """Whether the projection already reflects `seq` or newer (`replace_blocks` would write
    nothing): the costly part of a refresh can be skipped."""
    covered = await db.fetchval(
        "SELECT seq >= $2 FROM document_projections WHERE document_id = $1", doc_id, seq
    )
    return bool(covered)


async def projection_seq(db: Executor, doc_id: str) -> int:
    seq = await db.fetchval("SELECT seq FROM document_projections WHERE document_id = $1", doc_id)
    return int(seq or 0)


async def list_blocks(db: Executor, doc_id: str) -> list[dict[str, Any]]:
    rows = await db.fetch(
        "SELECT block_id, parent_id, position, depth, path, type, content, text FROM blocks"
        " WHERE document_id = $1 ORDER BY depth, parent_id NULLS FIRST, position",
        doc_id,
    )
    return [dict(r) for r in rows]


# --- authors ----------------------------------------------------------------------------------


async def record_author_spans(
    conn: asyncpg.Connection, doc_id: str, spans: list[tuple[str, int, int]]
) -> None:
    """(user, first seq, last seq) per user of one snapshot batch; in the snapshot's transaction."""
    if spans:
        await conn.executemany(
            "INSERT INTO document_author_spans (document_id, user_id, from_seq, to_seq)"
            " VALUES ($1, $2, $3, $4)",
            [(doc_id, user, first, last) for user, first, last in spans],
        )


async def author_spans(db: Executor, doc_id: str, upto: int) -> list[tuple[str, int, int]]:
    """Recorded spans that start at or before `upto`."""
    rows = await db.fetch(
        "SELECT user_id, from_seq, to_seq FROM document_author_spans"
        " WHERE document_id = $1 AND from_seq <= $2",
        doc_id,
        upto,
    )
    return [(r["user_id"], int(r["from_seq"]), int(r["to_seq"])) for r in rows]


async def display_names(db: Executor, user_ids: list[str]) -> dict[str, str]:
    """Names of the ids that are users (headers may carry other strings, e.g. tools)."""
    rows = await db.fetch(
        "SELECT id::text AS id, display_name FROM users WHERE id::text = ANY($1::text[])",
        user_ids,
    )
    return {r["id"]: r["display_name"] for r in rows}


# --- compaction bookkeeping ---------------------------------------------------------------------


@dataclass(frozen=True)
class Compaction:
    snapshot_seq: int
    prev_seq: int
    overlap_msgs: int
    purged_through: int

    @property
    def purge_pending(self) -> bool:
        return self.purged_through < self.prev_seq

    @classmethod
    def from_record(cls, row: asyncpg.Record) -> Compaction:
        return cls(
            int(row["snapshot_seq"]),
            int(row["prev_seq"]),
            int(row["overlap_msgs"]),
            int(row["purged_through"]),
        )


async def get_compaction(db: Executor, doc_id: str) -> Compaction | None:
    row = await db.fetchrow(
        "SELECT snapshot_seq, prev_seq, overlap_msgs, purged_through FROM document_compactions"
        " WHERE document_id = $1",
        doc_id,
    )
    return None if row is None else Compaction.from_record(row)


async def get_compactions(db: Executor, doc_ids: list[str]) -> dict[str, Compaction]:
    rows = await db.fetch(
        "SELECT document_id, snapshot_seq, prev_seq, overlap_msgs, purged_through"
        " FROM document_compactions WHERE document_id = ANY($1::uuid[])",
        doc_ids,
    )
    return {str(r["document_id"]): Compaction.from_record(r) for r in rows}


async def existing_documents(db: Executor, doc_ids: list[str]) -> set[str]:
    rows = await db.fetch("SELECT id FROM documents WHERE id = ANY($1::uuid[])", doc_ids)
    return {str(r["id"]) for r in rows}


async def save_compaction(
    conn: asyncpg.Connection, doc_id: str, *, snapshot_seq: int, prev_seq: int, overlap_msgs: int
) -> None:
    """Written in the snapshot's transaction, after the monotonic snapshot upsert succeeded."""
    await conn.execute(
        "INSERT INTO document_compactions"
        " (document_id, snapshot_seq, prev_seq, overlap_msgs, purged_through)"
        " VALUES ($1, $2, $3, $4, 0)"
        " ON CONFLICT (document_id) DO UPDATE SET snapshot_seq = EXCLUDED.snapshot_seq,"
        " prev_seq = EXCLUDED.prev_seq, overlap_msgs = EXCLUDED.overlap_msgs,"
        " updated_at = now()"
        " WHERE document_compactions.snapshot_seq < EXCLUDED.snapshot_seq",
        doc_id,
        snapshot_seq,
        prev_seq,
        overlap_msgs,
    )


async def mark_purged(db: Executor, doc_id: str, seq: int) -> None:
    """A purge through the snapshot itself (tight mode) leaves no overlap in the stream."""
    await db.execute(
        "UPDATE document_compactions SET purged_through = $2, updated_at = now(),"
        " overlap_msgs = CASE WHEN $2 >= snapshot_seq THEN 0 ELSE overlap_msgs END"
        " WHERE document_id = $1 AND purged_through < $2",
        doc_id,
        seq,
    )


async def live_projection_seqs(db: Executor, doc_ids: list[str]) -> dict[str, int]:
    """The projection's seq (0: none yet) of each of `doc_ids` that is a live (not deleted)
    document."""
    rows = await db.fetch(
        "SELECT d.id, coalesce(p.seq, 0) AS seq FROM documents d"
        " LEFT JOIN document_projections p ON p.document_id = d.id"
        " WHERE d.id = ANY($1::uuid[]) AND d.deleted_at IS NULL",
        doc_ids,
    )
    return {str(r["id"]): int(r["seq"]) for r in rows}
