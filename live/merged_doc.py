"""One document's state as Yjs updates: pure, no I/O, no asyncio (the room's document part).

The document is held as one Yjs update (merged with `pycrdt.merge_updates`, or re-encoded), never
as a live pycrdt `Doc`:

* measured with pycrdt 0.14.13: once a Yjs client splits a UTF-16 surrogate pair (deleting half of
  an emoji, which stock Yjs clients do and repair with U+FFFD), `Doc.get_update()` encodes an
  update that drops most of the document and that Yjs itself fails to apply, so a late joiner
  would get a broken state. The update-level functions (`merge_updates`, `get_update(update, sv)`,
  `get_state(update)`) give exactly what Yjs gives on the same input (tests/test_ws_sync.py);
* a Doc also leaves pending structs (updates whose dependencies have not arrived) out of its
  encoding, while merged updates keep them (DESIGN.md §7), so nothing is lost for joiners;
* it is the representation the snapshots already use.

But merged updates keep every update's items apart, so a long-edited document grows several times
larger than what a `Doc` (or the reference server's `Y.Doc`) would send a joiner, and yrs loads it
very slowly. So while the state is a `Doc`'s re-encoding (`compact`: a new document, a re-encoded
snapshot) the entries since are kept, and every `COMPACT_AFTER_ENTRIES` (or `_BYTES`) the base
and those entries are re-encoded by core/compaction.py, which refuses whenever that could lose or
corrupt anything or take the loop too long (then the document stays merged until a re-encoded
snapshot resets it: the snapshot job re-encodes in the projection worker).

New entries go to a tail that is folded into the state lazily (when someone needs the state, or
when the tail grows past a fraction of the state), so appending an update costs O(update).
"""

from __future__ import annotations

import pycrdt
import structlog
from prometheus_client import Counter

from core.compaction import Coverage, reencode
from core.yjs import EMPTY_UPDATE, ProtocolError, call_pycrdt, merge_skipping

log = structlog.get_logger(__name__)

POISON_UPDATES = Counter(
    "collab_poison_updates_total", "Log entries pycrdt refused to apply (skipped)", ["node"]
)
REENCODINGS = Counter(
    "collab_room_reencodings_total",
    "Room documents re-encoded (outcome=reencoded) or left merged because a re-encoding could"
    " lose something (outcome=kept_merged)",
    ["outcome"],
)

# The tail of unmerged entries is folded into the state once it holds this many entries or this
# fraction of the state's bytes (merging costs O(state): ~70 ms for 8 MB, so not per update).
TAIL_MAX_ENTRIES = 512
TAIL_MIN_BYTES = 64 * 1024
TAIL_STATE_FRACTION = 8
#: Re-encode once this many entries arrived since the last re-encoding. Folding the 25k entries
#: of the late-joiner bench's 100k-insert document (in process, medians of 3): merged only 0.40 s
#: (the merged state grows to 2.3 MB, and every fold of the tail merges all of it); re-encoding
#: every 256 entries 0.44 s, every 1,024 0.27 s, every 4,096 0.26 s -- the re-encoded state
#: stays at 0.3 MB, so the folds between re-encodings stay cheap too.
COMPACT_AFTER_ENTRIES = 1024
#: ... or once they hold this many bytes (large entries: a re-encoding on the loop takes at most
#: `core.compaction.ON_LOOP_LIMITS.total_bytes`).
COMPACT_AFTER_BYTES = 1024 * 1024


class MergedDoc:
    """The whole document as one Yjs v1 update plus a tail of updates not folded in yet."""

    def __init__(self, doc_id: str) -> None:
        self.doc_id = doc_id
        self._state = EMPTY_UPDATE  # everything up to the tail
        self._tail: list[bytes] = []  # entries appended since the last fold
        self._tail_bytes = 0
        # While `_state` is a re-encoding: that base, and the entries folded in since (merged).
        # None: the state is merged for good (an input re-encoding refused, an unknown snapshot).
        self._base: bytes | None = EMPTY_UPDATE
        self._since: list[bytes] = []
        self._coverage: Coverage | None = None  # of `_state`, built on demand

    def reset(self, state: bytes, *, compact: bool = False) -> None:
        """Start over from a snapshot's state, checked by yrs' own parse.

        Snapshots are merged by our job from the log (which would fail on poison first), so yrs'
        parse is check enough; the pure-Python walk costs ~0.2 s per MB of a fragmented document,
        on the event loop. `compact`: the snapshot is a re-encoding (its row says so), so later
        entries can be re-encoded onto it. Raises ProtocolError for a state yrs cannot read.
        """
        self._tail, self._tail_bytes = [], 0
        self._state = state or EMPTY_UPDATE
        self._base = self._state if compact else None
        self._since, self._coverage = [], None
        if self._state != EMPTY_UPDATE:
            call_pycrdt("snapshot", pycrdt.get_state, self._state)

    def append(self, update: bytes) -> None:
        """Add a validated update (O(update); folded into the state later)."""
        if update == EMPTY_UPDATE:
            return
        self._tail.append(update)
        self._tail_bytes += len(update)
        threshold = max(TAIL_MIN_BYTES, len(self._state) // TAIL_STATE_FRACTION)
        if len(self._tail) >= TAIL_MAX_ENTRIES or self._tail_bytes >= threshold:
            self.full_state()

    def absorb(self, state: bytes) -> None:
        """Add a whole state (a newer snapshot that catches up a gap): merged, not re-encoded,
        since a merged state may be one yrs loads very slowly."""
        self._base, self._since = None, []
        self.append(state)

    def full_state(self) -> bytes:
        """The whole document as one Yjs v1 update, pending structs included."""
        if not self._tail:
            return self._state
        tail, self._tail, self._tail_bytes = self._tail, [], 0
        self._coverage = None
        if self._base is not None and self._reencode_due(tail):
            encoded = reencode(self._base, [*self._since, *tail])
            if encoded is not None:
                REENCODINGS.labels("reencoded").inc()
                self._state = self._base = encoded
                self._since = []
                return self._state
            REENCODINGS.labels("kept_merged").inc()
            log.info("room.stays_merged", doc_id=self.doc_id)
            self._base, self._since = None, []
        skipped: set[int] = set()
        self._state = merge_skipping(
            [self._state, *tail], lambda index, err: self._skipped(index, err, skipped)
        )
        if self._base is not None:
            self._since.extend(u for index, u in enumerate(tail, 1) if index not in skipped)
        return self._state

    def _reencode_due(self, tail: list[bytes]) -> bool:
        entries = len(self._since) + len(tail)
        return entries >= COMPACT_AFTER_ENTRIES or (
            sum(map(len, self._since)) + sum(map(len, tail)) >= COMPACT_AFTER_BYTES
        )

    @property
    def is_reencoded(self) -> bool:
        """Whether the state is held as a re-encoding (plus entries merged onto it since)."""
        return self._base is not None

    def _skipped(self, index: int, err: ProtocolError, skipped: set[int]) -> None:
        """One that yrs refuses is dropped (logged) rather than losing the others."""
        skipped.add(index)
        POISON_UPDATES.labels("merge").inc()
        log.error("room.unmergeable_update", doc_id=self.doc_id, error=str(err))

    def state_vector(self) -> bytes:
        return call_pycrdt("state vector", pycrdt.get_state, self.full_state())

    def diff(self, state_vector: bytes) -> bytes:
        """Everything a peer with `state_vector` lacks, pending structs included (SyncStep2)."""
        return call_pycrdt("diff", pycrdt.get_update, self.full_state(), state_vector)

    def would_change(self, update: bytes) -> bool:
        """Whether `update` adds anything to the document (without applying it).

        Read-only clients send their whole delete set in every SyncStep2; that is not an edit and
        must not earn them a permission-denied message. Asked of the state's state vector and
        delete set (kept until the state changes), which holds whichever way the state is
        encoded. A state holding pending structs answers "changes" for anything past the gap (as
        comparing merged bytes did: merging is not byte-stable there); storing such an update
        again is harmless, Yjs updates are idempotent.
        """
        if update == EMPTY_UPDATE:
            return False
        state = self.full_state()
        if self._coverage is None:
            self._coverage = Coverage(state)
        return not self._coverage.contains(update)

    def size_estimate(self) -> int:
        """An upper bound of the merged size (the unmerged tail over-estimates: merging squashes)."""
        return len(self._state) + self._tail_bytes

    def size(self) -> int:
        """The exact size (folds the tail: O(state))."""
        return len(self.full_state())
