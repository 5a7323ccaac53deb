"""Reads for exports: the newest version at or before a stream sequence (point in time), and
the comments shown as footnotes."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

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


async def comments_of(db: Executor, doc_id: str) -> list[dict[str, Any]]:
    """The document's live comments for export footnotes: threads not archived, comments not
    deleted, threads in creation order and each thread's top comment first; authors' names."""
    rows = await db.fetch(
        "SELECT t.id AS thread_id, t.block_id, t.status, c.parent_id,"
        " coalesce(u.display_name, '') AS author, c.text"
        " FROM comment_threads t"
        " JOIN comments c ON c.thread_id = t.id AND c.deleted_at IS NULL"
        " LEFT JOIN users u ON u.id = c.author_id"
        " WHERE t.document_id = $1 AND t.archived_at IS NULL"
        " ORDER BY t.created_at, t.id, c.parent_id NULLS FIRST, c.created_at, c.id",
        doc_id,
    )
    return [dict(row) for row in rows]
