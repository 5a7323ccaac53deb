"""Reads for point-in-time exports: the newest version at or before a stream sequence."""

from __future__ import annotations

from dataclasses import dataclass

from models.db import Executor


@dataclass(frozen=True)
class StoredState:
    """A stored full state of a document (a version) and the stream seq it covers."""

    seq: int
    state: bytes


async def version_at_or_before(db: Executor, doc_id: str, seq: int) -> StoredState | None:
    row = await db.fetchrow(
        "SELECT seq, state FROM document_versions WHERE document_id = $1 AND seq <= $2"
        " ORDER BY seq DESC LIMIT 1",
        doc_id,
        seq,
    )
    return None if row is None else StoredState(int(row["seq"]), bytes(row["state"]))
