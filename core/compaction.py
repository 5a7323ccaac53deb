"""Re-encoding a document's updates through a pycrdt `Doc`, used only when it provably loses nothing.

Why: the merged updates the rooms and snapshots hold (`pycrdt.merge_updates`) keep every update's
items apart. For 100k scattered one-character inserts that is 2.29 MB, which a joiner is sent and
must apply (Yjs: ~150 ms) and which yrs loads pathologically (13.5 s, 4 GB); the same document
re-encoded by a `Doc` is 0.27 MB and loads in 4 ms -- the size the reference server sends, since it
keeps a `Y.Doc`. Applying the updates in log order to a `Doc` costs about what merging them does.

Why "provably": live/merged_doc.py keeps merged updates for two reasons, and both are checked here
on every re-encoding, falling back to the merged form when either could apply:

* yrs mis-encodes a text whose UTF-16 surrogate pair a Yjs client split (it shifts the string by one
  unit -- a state Yjs refuses), and the result looks structurally sound, so it cannot be detected
  afterwards. A pair exists only where an update carries a 4-byte UTF-8 sequence, so inputs holding
  one are not re-encoded (documents with emoji keep the merged form). Yjs client ids (random
  32-bit varints) look like one in ~0.5 % of cases, so the document's client ids are masked before
  looking; another binary value that looks like one only costs the optimisation;
* a `Doc` leaves pending structs and deletions (those whose dependencies have not arrived) out of
  its encoding. The re-encoding is kept only if it contains every input: no struct of any input
  beyond its state vector, no deletion of any input missing from its delete set (`Coverage`).

On the event loop the entries are bounded (`ON_LOOP_LIMITS`), since a merged state published as
one update would load as slowly as above; the projection worker re-encodes without bounds.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

import pycrdt
from pycrdt import Decoder, write_var_uint

from core.yjs import EMPTY_UPDATE, ProtocolError, call_pycrdt, merge
from core.yjs_state import decode_state_vector

#: The UTF-8 form of a code point above U+FFFF (a UTF-16 surrogate pair in Yjs' strings).
_ASTRAL = re.compile(rb"[\xf0-\xf4][\x80-\xbf]{3}")


@dataclass(frozen=True)
class Limits:
    """What `reencode` takes on the event loop: yrs integrates the items of one update without
    squashing them in between, so a large update of many small items (a merged state, or one a
    client crafted) loads superlinearly slowly (0.27 MB of scattered inserts: 9 ms; 0.54 MB:
    0.12 s; 0.9 MB: 0.44 s; 2.3 MB: 13.5 s). A room's entries are a few hundred bytes each; a
    larger one (an import, a big paste) leaves the document merged until the snapshot job
    re-encodes it in the projection worker."""

    entry_bytes: int
    total_bytes: int


ON_LOOP_LIMITS = Limits(entry_bytes=128 * 1024, total_bytes=2 * 1024 * 1024)
#: Entries merged into one `apply_update` (see `_runs`).
RUN = 32
RUN_BYTES = 64 * 1024


class Coverage:
    """What one state holds, to ask whether an update adds anything: its state vector, and its
    delete set as a deletions-only update (what `get_update(state, its own state vector)` is).

    An update adds nothing when it has no struct beyond the state vector and merging its
    deletions into the state's leaves those bytes as they are: yrs merges delete sets into one
    canonical form (no difference in 2,700 random checks, 120 clients; the comparison of merged
    bytes that `would_change` always relied on). Independent of how the state is encoded, and all
    in Rust: decoding the delete sets in Python cost 12 ms per reconnect for a long-edited
    document. A state with pending structs (`complete` false) contains nothing but the empty
    update: its delete set cannot be told apart from those structs without walking them.
    """

    def __init__(self, state: bytes) -> None:
        self.state_vector = call_pycrdt("state vector", pycrdt.get_state, state)
        own = call_pycrdt("diff", pycrdt.get_update, state, self.state_vector)
        self.complete = Decoder(own).read_var_uint() == 0  # else: structs past a gap (pending)
        self._deletions = own

    @property
    def clients(self) -> set[int]:
        """The client ids with structs in the state. Every origin and deleted range of a state
        with nothing pending refers to one of them (one left unmasked by `_may_hold_astral` would
        only cost the optimisation)."""
        return set(decode_state_vector(self.state_vector))

    def contains(self, update: bytes) -> bool:
        """Whether `update` adds no struct and no deletion to the state."""
        if update == EMPTY_UPDATE:
            return True
        if not self.complete:
            return False
        diff = call_pycrdt("diff", pycrdt.get_update, update, self.state_vector)
        if Decoder(diff).read_var_uint():  # structs
            return False
        merged = call_pycrdt("merge", pycrdt.merge_updates, self._deletions, diff)
        return bool(merged == self._deletions)


def reencode(base: bytes, entries: Sequence[bytes]) -> bytes | None:
    """`base` (a state: a re-encoding, or any state in the projection worker) and `entries` after
    it in log order as one `Doc` encoding, or None when that could lose or corrupt anything (see
    the module docstring) or could hold the event loop too long (`ON_LOOP_LIMITS`)."""
    return _reencode(base, entries, ON_LOOP_LIMITS)


def reencode_off_loop(base: bytes, entries: Sequence[bytes]) -> bytes | None:
    """`reencode` with no size limits, for the projection worker (a process of its own, with a
    timeout): any base, however long yrs takes to load it, and any number of entries."""
    return _reencode(base, entries, None)


def _reencode(base: bytes, entries: Sequence[bytes], limits: Limits | None) -> bytes | None:
    present = [u for u in entries if u and u != EMPTY_UPDATE]
    if limits is not None and (
        any(len(u) > limits.entry_bytes for u in present)
        or sum(map(len, present)) > limits.total_bytes
    ):
        return None
    try:
        # The base, then the entries merged a few at a time: a `Doc` commits (and squashes) after
        # every `apply_update`, ~12 µs each, so 25k entries applied one by one took 0.36 s and
        # in runs of 32 take 0.1 s. (All in one transaction is far worse: without the squashes
        # in between, integrating gets slow -- 13 s.) A run holds all of its entries' structs and
        # deletions, so checking the runs checks the entries.
        runs = [u for u in (base, *_runs(present)) if u and u != EMPTY_UPDATE]
        if not runs:
            return EMPTY_UPDATE
        doc: pycrdt.Doc = pycrdt.Doc()
        for run in runs:
            call_pycrdt("apply", doc.apply_update, run)
        encoded: bytes = call_pycrdt("encode", doc.get_update)
        coverage = Coverage(encoded)
        if not coverage.complete or not all(coverage.contains(run) for run in runs):
            return None
        if _may_hold_astral([base, *present], coverage.clients):
            return None
    except ProtocolError:
        return None
    return encoded


def _runs(entries: list[bytes]) -> list[bytes]:
    """Consecutive entries merged, `RUN` at most and `RUN_BYTES` at most (one larger entry alone):
    yrs integrates the items of one update without squashing them, which costs superlinearly
    in their number (one 0.9 MB update of scattered inserts: 0.44 s; 0.27 MB: 9 ms)."""
    runs: list[bytes] = []
    start = size = 0
    for index, entry in enumerate(entries):
        if index > start and (index - start >= RUN or size + len(entry) > RUN_BYTES):
            runs.append(merge(entries[start:index]))
            start, size = index, 0
        size += len(entry)
    if start < len(entries):
        runs.append(merge(entries[start:]))
    return runs


def worth_reencoding(state: bytes) -> bool:
    """Whether a merged state could pass `reencode` (nothing pending, no character above U+FFFF):
    a cheap check before the expensive part, loading that state into a `Doc`."""
    try:
        coverage = Coverage(state)
    except ProtocolError:
        return False
    if not coverage.complete:
        return False
    return _ASTRAL.search(state) is None or not _may_hold_astral([state], coverage.clients)


def _may_hold_astral(updates: Sequence[bytes], clients: set[int]) -> bool:
    """Whether any update may carry a character above U+FFFF, client ids aside (a varint can
    look like a 4-byte UTF-8 sequence; masked with a byte no sequence contains)."""
    masks = [write_var_uint(client) for client in clients]
    for update in updates:
        if not _ASTRAL.search(update):
            continue
        for mask in masks:
            update = update.replace(mask, b"\x00")
        if _ASTRAL.search(update):
            return True
    return False
