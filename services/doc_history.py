"""A document's CRDT state as it was at a stream sequence or a version (point-in-time export).

The state at seq S is the newest stored full state at or before S — the current snapshot or a
version — plus the log updates in (that state, S]. Compaction purges the log one snapshot
behind, so between an old version and S the updates may be gone: then S cannot be rebuilt
exactly and the answer is a 409 naming the sequences that can (never a silently different state).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from core.errors import AppError, NotFound, Unavailable, ValidationFailed
from core.yjs import merge
from models.repo import doc_content as content_repo
from models.repo import doc_snapshots
from models.repo import documents as docs_repo
from models.repo import exports as repo
from services.doc_state import load_state

if TYPE_CHECKING:
    from services.deps import Deps


class HistoryCompacted(AppError):
    status = 409
    code = "history_compacted"


async def state_of_version(ctx: Deps, doc_id: str, version_id: str) -> tuple[bytes, int]:
    version = await docs_repo.get_version(ctx.db, doc_id, version_id)
    if version is None:
        raise NotFound("version not found")
    return bytes(version["state"]), int(version["seq"])


async def state_at_seq(ctx: Deps, doc_id: str, seq: int) -> bytes:
    """The document exactly as it was once the update at stream seq `seq` was applied."""
    current = await load_state(ctx.db, ctx.doc_log, doc_id)
    if seq > current.seq:
        raise ValidationFailed(
            f"seq {seq} is past the document's last sequence {current.seq}",
            fields={"seq": [f"at most {current.seq}"]},
        )
    if seq == current.seq:
        return current.update
    if seq >= current.snapshot_seq:
        snapshot = await doc_snapshots.get_snapshot(ctx.db, doc_id)
        if snapshot.seq != current.snapshot_seq:
            raise Unavailable("document is being compacted, retry")
        return merge([snapshot.state, *(e.update for e in current.entries if e.seq <= seq)])
    base = await repo.version_at_or_before(ctx.db, doc_id, seq)
    base_seq, base_state = (base.seq, base.state) if base else (0, b"")
    if base_seq == seq:
        return base_state
    compaction = await content_repo.get_compaction(ctx.db, doc_id)
    purged = compaction.purged_through if compaction else 0
    if purged > base_seq:
        raise HistoryCompacted(
            f"the log before seq {purged + 1} is compacted: export a version"
            f" (the nearest at or before {seq} is at seq {base_seq}) or a seq from"
            f" {current.snapshot_seq}",
            fields={"seq": ["history compacted"]},
        )
    entries = await ctx.doc_log.read(doc_id, base_seq)
    updates = [e.update for e in entries if e.seq <= seq]
    return merge([base_state, *updates])
