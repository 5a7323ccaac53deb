"""Awareness bookkeeping for one document room: who set which awareness state, and which may.

Pure (no I/O, no clock of its own): the room passes `now` in and forwards what this returns.

y-protocols awareness lets any peer overwrite any client's entry by sending a higher clock
(DESIGN.md §7). Here every client id is *bound* to the connection that introduced it with a state,
and only that connection may change or remove it (security row S2). Entries from other nodes are
trusted to have been checked by their node and follow the plain y-protocols clock rule; an entry
bound to a local connection is never overwritten from outside.

Two stock-client behaviours shape the rules:

* The y-websocket provider re-broadcasts every awareness change it *receives* (it does not look at
  the origin), so each client keeps sending other clients' entries with their current clocks. Those
  are ignored silently: they are not an attack and not news.
* After a clean close the server removes the client's state with the same clock (y-protocols
  `removeAwarenessStates`); when that client reconnects it re-sends its state with the same clock,
  which every peer would reject as stale until its next 15 s renewal. Instead of accepting the
  stale clock (peers would still reject it), the server *nudges* the client: it sends the client a
  removal of its own id with a higher clock, which y-protocols answers by re-broadcasting its state
  with a clock above that (its "never let a remote client remove this local state" rule).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from live.protocol import AwarenessEntry

# A stock provider binds exactly one id (its doc's clientID); a few spare ids cover clients that run
# two docs over one socket, while stopping a connection from occupying thousands of ids (S2).
MAX_CLIENT_IDS_PER_CONNECTION = 4
# Removed entries are remembered (their clock stops stale re-broadcasts from resurrecting a state)
# for this many awareness timeouts, then forgotten so a long-lived room does not grow without bound.
FORGET_REMOVED_AFTER_TIMEOUTS = 5

State = dict[str, Any]


@dataclass
class _Record:
    clock: int
    state: State | None
    updated_at: float
    owner: str | None  # the local connection bound to this id; None for remote or released ids
    user_id: str | None
    node: str | None  # the node that owns it, for ids learnt from other nodes


@dataclass(frozen=True)
class AwarenessChange:
    """One accepted entry: what to forward, and what JSON clients need to describe it."""

    entry: AwarenessEntry
    user_id: str | None
    previous: State | None

    @property
    def changed(self) -> bool:
        """False for a renewal (same state, higher clock): y-protocols peers need it to keep the
        state alive, JSON clients do not."""
        return self.entry.state != self.previous


@dataclass(frozen=True)
class LocalResult:
    accepted: list[AwarenessChange]
    # Entries to send back to the sending connection only (see "nudge" in the module docstring).
    nudges: list[AwarenessEntry]
    ignored: int


class AwarenessRegistry:
    def __init__(self, node_id: str) -> None:
        self.node_id = node_id
        self._records: dict[int, _Record] = {}

    # --- local connections -------------------------------------------------------------------

    def apply_local(
        self, conn_id: str, user_id: str, entries: list[AwarenessEntry], now: float
    ) -> LocalResult:
        """Apply a local connection's awareness update under the binding rules."""
        accepted: list[AwarenessChange] = []
        nudges: list[AwarenessEntry] = []
        ignored = 0
        first_claim = not self.bound_ids(conn_id)
        for entry in entries:
            record = self._records.get(entry.client_id)
            if record is not None and record.owner == conn_id:
                change = self._update_own(record, entry, now)
            elif self._may_claim(record, conn_id, user_id, entry):
                change = self._claim(record, conn_id, user_id, entry, now)
                if change is None and first_claim and record is not None:
                    nudges.append(AwarenessEntry(entry.client_id, record.clock + 1, None))
            else:
                change = None
            if change is None:
                ignored += 1
            else:
                accepted.append(change)
        return LocalResult(accepted, nudges, ignored)

    def _update_own(
        self, record: _Record, entry: AwarenessEntry, now: float
    ) -> AwarenessChange | None:
        newer = entry.clock > record.clock
        removal = entry.clock == record.clock and entry.state is None and record.state is not None
        if not (newer or removal):
            return None
        return self._store(record, entry, now)

    def _may_claim(
        self, record: _Record | None, conn_id: str, user_id: str, entry: AwarenessEntry
    ) -> bool:
        if entry.state is None:  # a removal of an id this connection does not own: an echo
            return False
        if len(self.bound_ids(conn_id)) >= MAX_CLIENT_IDS_PER_CONNECTION:
            return False
        if record is None or record.state is None:
            return record is None or record.owner is None
        # A live state: bound to another local connection, or owned by another node. Only the same
        # user may take it over (a client that moved here after its node died or closed it).
        return record.owner is None and record.user_id == user_id

    def _claim(
        self,
        record: _Record | None,
        conn_id: str,
        user_id: str,
        entry: AwarenessEntry,
        now: float,
    ) -> AwarenessChange | None:
        if record is None:
            # clock -1: the first entry of a new id always counts as newer.
            record = _Record(-1, None, now, conn_id, user_id, self.node_id)
            self._records[entry.client_id] = record
        elif entry.clock <= record.clock:
            return None
        record.owner, record.user_id, record.node = conn_id, user_id, self.node_id
        return self._store(record, entry, now)

    def release(self, conn_id: str, now: float) -> list[AwarenessChange]:
        """A connection closed: remove its states for everyone (same clock + null, the y-protocols
        removal) and free its ids."""
        changes = []
        for client_id in self.bound_ids(conn_id):
            record = self._records[client_id]
            record.owner = None
            if record.state is not None:
                removal = AwarenessEntry(client_id, record.clock, None)
                changes.append(self._store(record, removal, now))
        return changes

    def held_by_others(self, conn_id: str, client_ids: list[int]) -> bool:
        """Whether every id names a live state bound to another local connection: then nothing
        an entry for it says can change anything (`apply_local` ignores such entries whatever
        their clock or state: `_may_claim` is false, no nudge). Stock y-websocket providers send
        every awareness update they receive back to the server, so most awareness frames a room
        gets are such echoes; they are dropped without parsing their JSON states."""
        for client_id in client_ids:
            record = self._records.get(client_id)
            if record is None or record.state is None or record.owner in (None, conn_id):
                return False
        return bool(client_ids)

    def bound_ids(self, conn_id: str) -> list[int]:
        return [cid for cid, r in self._records.items() if r.owner == conn_id]

    # --- other nodes -------------------------------------------------------------------------

    def apply_remote(
        self, node: str, user_id: str | None, entries: list[AwarenessEntry], now: float
    ) -> list[AwarenessChange]:
        """Apply entries another node accepted (plain y-protocols clock rule, local ids win)."""
        changes = []
        for entry in entries:
            record = self._records.get(entry.client_id)
            if record is None:
                if entry.state is None:
                    continue
                record = _Record(-1, None, now, None, user_id, node)
                self._records[entry.client_id] = record
            elif record.owner is not None:
                continue
            newer = entry.clock > record.clock
            removal = (
                entry.clock == record.clock and entry.state is None and record.state is not None
            )
            if newer or removal:
                record.user_id, record.node = user_id, node
                changes.append(self._store(record, entry, now))
        return changes

    # --- time --------------------------------------------------------------------------------

    def expire(self, now: float, timeout_s: float) -> list[AwarenessChange]:
        """Remove states not renewed within `timeout_s` (y-protocols outdatedTimeout): this is how a
        dead node's clients disappear. Bindings stay: the connection may renew later."""
        changes = []
        forget_before = now - timeout_s * FORGET_REMOVED_AFTER_TIMEOUTS
        for client_id, record in list(self._records.items()):
            if record.state is not None and now - record.updated_at >= timeout_s:
                removal = AwarenessEntry(client_id, record.clock, None)
                changes.append(self._store(record, removal, now))
            elif (
                record.state is None and record.owner is None and record.updated_at < forget_before
            ):
                del self._records[client_id]
        return changes

    # --- queries -----------------------------------------------------------------------------

    def states(self) -> list[AwarenessEntry]:
        """Every present state (answer to query-awareness, and what a new connection is sent)."""
        return [
            AwarenessEntry(cid, r.clock, r.state)
            for cid, r in self._records.items()
            if r.state is not None
        ]

    def local_states(self) -> dict[str, list[AwarenessEntry]]:
        """Present states bound to local connections, by user id (answer to another node's query)."""
        by_user: dict[str, list[AwarenessEntry]] = {}
        for cid, r in self._records.items():
            if r.owner is not None and r.state is not None and r.user_id is not None:
                by_user.setdefault(r.user_id, []).append(AwarenessEntry(cid, r.clock, r.state))
        return by_user

    def user_of(self, client_id: int) -> str | None:
        record = self._records.get(client_id)
        return None if record is None else record.user_id

    def state_of(self, client_id: int) -> State | None:
        record = self._records.get(client_id)
        return None if record is None else record.state

    def clock_of(self, client_id: int) -> int | None:
        record = self._records.get(client_id)
        return None if record is None else record.clock

    @staticmethod
    def _store(record: _Record, entry: AwarenessEntry, now: float) -> AwarenessChange:
        previous = record.state
        record.clock, record.state, record.updated_at = entry.clock, entry.state, now
        return AwarenessChange(entry, record.user_id, previous)
