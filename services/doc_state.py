"""Loading a document's current CRDT state: latest snapshot + the log after it, with no gap.

A purge runs one snapshot behind the newest, so a reader that loaded snapshot S can replay from
S + 1 as long as at most one newer snapshot was taken meanwhile. JetStream would silently start a
consumer at the first message still stored if S + 1 were gone, so after reading the log we re-read
the snapshot sequence: if it moved past S we cannot prove there was no hole, and load again.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import structlog

from bus.doc_log import DocLog, LogEntry
from core.errors import Unavailable
from core.yjs import ProtocolError, merge_skipping
from models.db import Executor
from models.repo import doc_snapshots

log = structlog.get_logger(__name__)

LOAD_ATTEMPTS = 5

#: Every entry of a document after a seq, up to at least another, from what this node holds in
#: memory (a room's tail of the log: live/recent_entries.py); None when it does not hold them
#: all and the log must be read. Called as `recent(doc_id, after_seq, through_seq)`.
RecentEntriesReader = Callable[[str, int, int], "list[LogEntry] | None"]


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
        state = _fold(doc_id, snapshot.state, entries)
        return DocState(state, seq, snapshot.seq, entries, snapshot.state)
    raise Unavailable("document is being compacted, retry")


async def advance_state(db: Executor, doc_log: DocLog, doc_id: str, base: DocState) -> DocState:
    """The document as it is now, from `base` (a state this node read earlier) plus the log after
    `base.seq`: only the new entries are read and merged, not the whole log since the snapshot.

    Why: the projection refresher re-reads a live document every period; reading from the
    snapshot each time re-read and re-merged hundreds of entries per period (most of the server's
    NATS messages at 10 × 10, issue 15). The returned state's `snapshot_update`/`snapshot_seq` are
    `base`'s, so a reader of `entries` (the mention scan) sees exactly what is new.

    No hole: entries are purged only up to a snapshot's seq, after that snapshot is committed, so
    if no snapshot newer than `base` exists once the log has been read, nothing after `base.seq`
    was purged. If one does, this is a full `load_state`.
    """
    entries = await doc_log.read(doc_id, base.seq)
    if await doc_snapshots.get_snapshot_seq(db, doc_id) > base.seq:
        return await load_state(db, doc_log, doc_id)
    return extend_state(doc_id, base, entries)


def extend_state(doc_id: str, base: DocState, entries: list[LogEntry]) -> DocState:
    """`base` plus `entries`, every entry of the document after `base.seq` in order with no gap
    (what `DocLog.read` returns, or a room's tail of it: `RecentEntries`)."""
    if not entries:
        return DocState(base.update, base.seq, base.seq, [], base.update)
    state = _fold(doc_id, base.update, entries)
    return DocState(state, entries[-1].seq, base.seq, entries, base.update)


def _fold(doc_id: str, base: bytes, entries: list[LogEntry]) -> bytes:
    """`base` and the entries merged, skipping (and logging) one pycrdt cannot parse, as rooms and
    snapshots do: a poison message on the subject (S3) must not make the document unreadable to
    REST, search and the refresher until a snapshot happens to skip it."""

    def skip(index: int, err: ProtocolError) -> None:
        log.error(
            "doc_state.poison_skipped", doc_id=doc_id, seq=entries[index - 1].seq, error=str(err)
        )

    return merge_skipping([base, *(e.update for e in entries)], skip)
