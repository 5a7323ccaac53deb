"""Data access for document snapshots (compacted CRDT state) and the operation-id map."""

from __future__ import annotations

from dataclasses import dataclass

import asyncpg

from models.db import Database, Executor


@dataclass(frozen=True)
class Snapshot:
    state: bytes
    seq: int
    compact: bool = False  # `state` is a Doc's re-encoding (core/compaction.py)

    @classmethod
    def empty(cls) -> Snapshot:
        return cls(b"", 0, compact=True)  # the empty document is its own re-encoding


async def get_snapshot(db: Executor, doc_id: str) -> Snapshot:
    row = await db.fetchrow(
        "SELECT state, seq, compact FROM document_snapshots WHERE document_id = $1", doc_id
    )
    if row is None:
        return Snapshot.empty()
    return Snapshot(bytes(row["state"]), int(row["seq"]), compact=bool(row["compact"]))


async def get_snapshot_seq(db: Executor, doc_id: str) -> int:
    seq = await db.fetchval("SELECT seq FROM document_snapshots WHERE document_id = $1", doc_id)
    return int(seq or 0)


async def save_snapshot(
    conn: asyncpg.Connection | Database,
    doc_id: str,
    *,
    seq: int,
    state: bytes,
    state_vector: bytes,
    update_count: int,
    compact: bool = False,
) -> bool:
    """Move the snapshot forward; False if one at `seq` or newer is already stored (a fence
    against stale writers: a snapshot never goes backwards)."""
    row = await conn.fetchrow(
        "INSERT INTO document_snapshots"
        " (document_id, seq, state, state_vector, update_count, compact)"
        " VALUES ($1, $2, $3, $4, $5, $6)"
        " ON CONFLICT (document_id) DO UPDATE SET seq = EXCLUDED.seq, state = EXCLUDED.state,"
        " state_vector = EXCLUDED.state_vector, compact = EXCLUDED.compact,"
        " update_count = document_snapshots.update_count + EXCLUDED.update_count,"
        " updated_at = now()"
        " WHERE document_snapshots.seq < EXCLUDED.seq"
        " RETURNING seq",
        doc_id,
        seq,
        state,
        state_vector,
        update_count,
        compact,
    )
    return row is not None


async def get_operation_seq(db: Executor, doc_id: str, msg_id: str) -> int | None:
    seq = await db.fetchval(
        "SELECT seq FROM document_operations WHERE document_id = $1 AND msg_id = $2",
        doc_id,
        msg_id,
    )
    return None if seq is None else int(seq)


async def record_operation(
    db: Database, doc_id: str, msg_id: str, seq: int, digest: bytes | None = None
) -> int:
    """Remember msg_id → seq (and the payload's digest, for clients' operation ids); returns the
    seq stored first if a concurrent writer won."""
    stored = await db.fetchval(
        "INSERT INTO document_operations (document_id, msg_id, seq, payload_sha256)"
        " VALUES ($1, $2, $3, $4)"
        " ON CONFLICT (document_id, msg_id) DO UPDATE SET msg_id = EXCLUDED.msg_id"
        " RETURNING seq",
        doc_id,
        msg_id,
        seq,
        digest,
    )
    return int(stored)


@dataclass(frozen=True)
class RecordedOperation:
    """An operation id seen before: its version, and the SHA-256 of its payload (None for
    server-minted ids and rows older than the digest column)."""

    seq: int
    digest: bytes | None


async def get_operation(db: Database, doc_id: str, msg_id: str) -> RecordedOperation | None:
    row = await db.fetchrow(
        "SELECT seq, payload_sha256 FROM document_operations"
        " WHERE document_id = $1 AND msg_id = $2",
        doc_id,
        msg_id,
    )
    if row is None:
        return None
    digest = row["payload_sha256"]
    return RecordedOperation(int(row["seq"]), None if digest is None else bytes(digest))
