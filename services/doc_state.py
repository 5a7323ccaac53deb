"""Loading a document's current CRDT state: latest snapshot + the log after it, with no gap.

A purge runs one snapshot behind the newest, so a reader that loaded snapshot S can replay from
S + 1 as long as at most one newer snapshot was taken meanwhile. JetStream would silently start a
consumer at the first message still stored if S + 1 were gone, so after reading the log we re-read
the snapshot sequence: if it moved past S we cannot prove there was no hole, and load again.
"""

from __future__ import annotations

from dataclasses import dataclass

import structlog

from bus.doc_log import DocLog, LogEntry
from core.errors import Unavailable
from core.yjs import merge
from models.db import Executor
from models.repo import doc_snapshots

log = structlog.get_logger(__name__)

LOAD_ATTEMPTS = 5


@dataclass(frozen=True)
class DocState:
    """`update` is the whole state as one Yjs v1 update; it covers stream seq ≤ `seq`: the
    snapshot (`snapshot_update`, at `snapshot_seq`) merged with the log `entries` after it."""

    update: bytes
    seq: int
    snapshot_seq: int
    entries: list[LogEntry]
    snapshot_update: bytes = b""


async def load_state(db: Executor, doc_log: DocLog, doc_id: str) -> DocState:
    for attempt in range(LOAD_ATTEMPTS):
        snapshot = await doc_snapshots.get_snapshot(db, doc_id)
        entries = await doc_log.read(doc_id, snapshot.seq)
        if await doc_snapshots.get_snapshot_seq(db, doc_id) > snapshot.seq:
            log.info("doc_state.reload_after_snapshot", doc_id=doc_id, attempt=attempt)
            continue
        seq = entries[-1].seq if entries else snapshot.seq
        state = merge([snapshot.state, *(e.update for e in entries)])
        return DocState(state, seq, snapshot.seq, entries, snapshot.state)
    raise Unavailable("document is being compacted, retry")
