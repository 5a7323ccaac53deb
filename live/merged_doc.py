"""One document's state as merged Yjs updates: pure, no I/O, no asyncio (the room's document part).

The document is held as *merged Yjs updates* (`pycrdt.merge_updates`), not as a pycrdt `Doc`:

* measured with pycrdt 0.14.13: once a Yjs client splits a UTF-16 surrogate pair (deleting half of
  an emoji, which stock Yjs clients do and repair with U+FFFD), `Doc.get_update()` encodes an
  update that drops most of the document and that Yjs itself fails to apply, so a late joiner
  would get a broken state. The update-level functions (`merge_updates`, `get_update(update, sv)`,
  `get_state(update)`) give exactly what Yjs gives on the same input (tests/test_ws_sync.py);
* a Doc also leaves pending structs (updates whose dependencies have not arrived) out of its
  encoding, while merged updates keep them (DESIGN.md §7), so nothing is lost for joiners;
* it is the representation the snapshots already use.

New entries go to a tail that is merged into the state lazily (when someone needs the state, or
when the tail grows past a fraction of the state), so appending an update costs O(update).
"""

from __future__ import annotations

import pycrdt
import structlog
from prometheus_client import Counter

from core.yjs import EMPTY_UPDATE, ProtocolError, call_pycrdt, merge_skipping

log = structlog.get_logger(__name__)

POISON_UPDATES = Counter(
    "collab_poison_updates_total", "Log entries pycrdt refused to apply (skipped)", ["node"]
)

# The tail of unmerged entries is folded into the state once it holds this many entries or this
# fraction of the state's bytes (merging costs O(state): ~70 ms for 8 MB, so not per update).
TAIL_MAX_ENTRIES = 512
TAIL_MIN_BYTES = 64 * 1024
TAIL_STATE_FRACTION = 8


class MergedDoc:
    """The whole document as one Yjs v1 update plus a tail of updates not merged in yet."""

    def __init__(self, doc_id: str) -> None:
        self.doc_id = doc_id
        self._state = EMPTY_UPDATE  # merged updates up to the tail
        self._tail: list[bytes] = []  # entries appended since the last merge
        self._tail_bytes = 0

    def reset(self, state: bytes) -> None:
        """Start over from a snapshot's state, checked by yrs' own parse.

        Snapshots are merged by our job from the log (which would fail on poison first), so yrs'
        parse is check enough; the pure-Python walk costs ~0.2 s per MB of a fragmented document,
        on the event loop. Raises ProtocolError for a state yrs cannot read.
        """
        self._tail, self._tail_bytes = [], 0
        self._state = state or EMPTY_UPDATE
        if self._state != EMPTY_UPDATE:
            call_pycrdt("snapshot", pycrdt.get_state, self._state)

    def append(self, update: bytes) -> None:
        """Add a validated update (O(update); merged into the state later)."""
        if update == EMPTY_UPDATE:
            return
        self._tail.append(update)
        self._tail_bytes += len(update)
        threshold = max(TAIL_MIN_BYTES, len(self._state) // TAIL_STATE_FRACTION)
        if len(self._tail) >= TAIL_MAX_ENTRIES or self._tail_bytes >= threshold:
            self.full_state()

    def full_state(self) -> bytes:
        """The whole document as one Yjs v1 update, pending structs included."""
        if self._tail:
            self._state = merge_skipping([self._state, *self._tail], self._skipped)
            self._tail, self._tail_bytes = [], 0
        return self._state

    def _skipped(self, _index: int, err: ProtocolError) -> None:
        """One that yrs refuses is dropped (logged) rather than losing the others."""
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
        must not earn them a permission-denied message. Merging is deterministic: an update that
        is already contained leaves the merged bytes unchanged.
        """
        if update == EMPTY_UPDATE:
            return False
        state = self.full_state()
        return call_pycrdt("merge", pycrdt.merge_updates, state, update) != state

    def size_estimate(self) -> int:
        """An upper bound of the merged size (the unmerged tail over-estimates: merging squashes)."""
        return len(self._state) + self._tail_bytes

    def size(self) -> int:
        """The exact merged size (merges the tail: O(state))."""
        return len(self.full_state())
