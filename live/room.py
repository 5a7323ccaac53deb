"""One document's room on this node: its CRDT doc, its local connections and its awareness.

A room is a cache (DESIGN.md §1): it is built from the latest Postgres snapshot plus the document's
JetStream subject after the snapshot's sequence, and can be dropped and rebuilt at any time.

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
when the tail grows past a fraction of the state), so applying an update costs O(update).

Update path (DESIGN.md §4): a connection validates an update and calls `publish()`, which checks
the size budget and publishes to JetStream; nothing is applied or shown to anyone before the PubAck.
*Every* update -- this node's and other nodes' -- is then applied from the room's ordered log
subscription, in stream order, exactly once (`seq <= last_applied_seq` is skipped). So:

* `last_applied_seq` is a true prefix: the room holds every update of the document up to it, which
  is what a JSON client's `version` promises and what `?since=` relies on;
* a node's own updates are never applied twice and need no "seen on the fast path" bookkeeping;
* the cost is the push delivery of a message JetStream has just stored, which arrives together with
  the PubAck (measured in docs/realtime.md), so latency does not suffer.

Fan-out is coalesced per event-loop turn: updates applied in one turn are merged into one Yjs frame
sent to every y-websocket peer (one write per connection), and waiters (JSON acks) are released
only after that delivery so a JSON client never sees its ack's version before the earlier versions.

Origins: the only writes to the state are entries from the log (snapshot and entries), tagged
with the connection that sent them (Collab-Node/Collab-Client headers) so fan-out skips the sender
and JSON peers are not echoed their own operations. Connections never write to the state, which is
what keeps the room a pure function of the log.

The room never imports Tornado: peers are anything with the `Peer` methods (see live/session.py).
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections import deque
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from functools import cached_property
from typing import Any, Protocol

import nats.errors
import pycrdt
import structlog
from nats.aio.msg import Msg
from prometheus_client import Counter

from bus.connection import NatsConnection
from bus.doc_log import DocLog, LogEntry, LogSubscription, PublishAck
from bus.jetstream import doc_awareness_subject
from core.errors import AppError, CloseCode, Unavailable
from live import envelope
from live.awareness import AwarenessChange, AwarenessRegistry
from live.protocol import (
    EMPTY_UPDATE,
    AwarenessEntry,
    ProtocolError,
    call_pycrdt,
    decode_awareness,
    encode_awareness,
    encode_awareness_entries,
    encode_update,
    validate_update_structure,
)
from live.yjs_state import single_client
from models.db import Database
from models.repo import doc_snapshots
from server.settings import Settings

log = structlog.get_logger(__name__)

POISON_UPDATES = Counter(
    "collab_poison_updates_total", "Log entries pycrdt refused to apply (skipped)", ["node"]
)
ROOM_RESUBSCRIBES = Counter(
    "collab_room_resubscribes_total", "Room log subscriptions recreated", ["reason"]
)

# A room load replays the subject up to the last sequence measured right after subscribing; a
# healthy JetStream delivers thousands of messages per second, so this bounds only a stuck consumer.
LOAD_SYNC_TIMEOUT_S = 20.0
LOAD_ATTEMPTS = 5
# A published update must come back through the subscription: if it has not after this long the
# consumer is stuck (slow consumer, lost heartbeat) and is recreated from `last_applied_seq`.
STALL_AFTER_S = 5.0
# The tail of unmerged entries is folded into the state once it holds this many entries or this
# fraction of the state's bytes (merging costs O(state): ~70 ms for 8 MB, so not per update).
TAIL_MAX_ENTRIES = 512
TAIL_MIN_BYTES = 64 * 1024
TAIL_STATE_FRACTION = 8
MAINTENANCE_MIN_INTERVAL_S = 0.2
MAINTENANCE_MAX_INTERVAL_S = 3.0  # the y-protocols check interval

HEADER_NODE = "Collab-Node"
HEADER_USER = "Collab-User"
HEADER_KIND = "Collab-Kind"  # "update" (default) or "query": "send me your local states"
KIND_QUERY = "query"


class DocumentTooLarge(AppError):
    """The update would push the document past its size budget; nothing was published."""

    status = 413
    code = "document_too_large"
    ws_close_code = CloseCode.PAYLOAD_TOO_LARGE


@dataclass(frozen=True)
class AppliedUpdate:
    seq: int
    update: bytes
    conn_id: str | None  # the connection on THIS node that sent it; None if from elsewhere
    user_id: str | None


class UpdateBatch:
    """Updates applied in one event-loop turn; each encoding is computed once for all peers."""

    def __init__(self, updates: list[AppliedUpdate]) -> None:
        self.updates = updates

    def only_from(self, conn_id: str) -> bool:
        return all(u.conn_id == conn_id for u in self.updates)

    @cached_property
    def yjs_frame(self) -> bytes:
        """One y-websocket Update frame carrying every update of the batch (merged)."""
        if len(self.updates) == 1:
            return encode_update(self.updates[0].update)
        merged = call_pycrdt("merge", pycrdt.merge_updates, *(u.update for u in self.updates))
        return encode_update(merged)

    @cached_property
    def json_messages(self) -> list[str]:
        return [
            envelope.operation(u.update, u.seq, u.user_id, single_client(u.update))
            for u in self.updates
        ]


class AwarenessBatch:
    def __init__(self, changes: list[AwarenessChange]) -> None:
        self.changes = changes

    @cached_property
    def yjs_frame(self) -> bytes:
        return encode_awareness(encode_awareness_entries(c.entry for c in self.changes))


class Peer(Protocol):
    """What a room needs from a connection (implemented by live/session.py)."""

    conn_id: str
    user_id: str

    def deliver_updates(self, batch: UpdateBatch) -> None: ...

    def deliver_awareness(self, batch: AwarenessBatch, origin: str | None) -> None: ...

    def renew_presence(self, now: float) -> None: ...

    def close(self, code: CloseCode, reason: str | None = None) -> None: ...


class Room:
    def __init__(
        self,
        doc_id: str,
        *,
        db: Database,
        doc_log: DocLog,
        nats_conn: NatsConnection,
        settings: Settings,
        on_empty: Callable[[Room], None],
    ) -> None:
        self.doc_id = doc_id
        self.node_id = settings.node_id
        self.settings = settings
        self._db = db
        self._log = doc_log
        self._nats = nats_conn
        self._on_empty = on_empty
        self.last_applied_seq = 0
        self.delivered_seq = 0  # every update up to here has been handed to the local peers
        self.snapshot_seq = 0
        self.awareness = AwarenessRegistry(self.node_id)
        self.peers: dict[str, Peer] = {}
        self._state = EMPTY_UPDATE  # merged updates up to the tail
        self._tail: list[bytes] = []  # entries applied since the last merge
        self._tail_bytes = 0
        self._reserved = 0  # bytes of updates being published right now (budget)
        self._outbox: list[AppliedUpdate] = []
        self._flush_scheduled = False
        self._waiters: list[tuple[int, asyncio.Future[None]]] = []
        self._expected: deque[tuple[int, float]] = deque()  # (published seq, deadline)
        self._generation = 0
        self._sub: LogSubscription | None = None
        self._awareness_sub: Any = None
        self._resubscribing = asyncio.Lock()
        self._tasks: set[asyncio.Task[Any]] = set()
        self._maintenance: asyncio.Task[None] | None = None
        self.stopped = False

    # --- lifecycle ---------------------------------------------------------------------------

    async def start(self) -> None:
        """Load snapshot + log with no gap, then follow the log and other nodes' awareness."""
        for attempt in range(LOAD_ATTEMPTS):
            if await self._load_once():
                break
            log.info("room.reload_after_snapshot", doc_id=self.doc_id, attempt=attempt)
        else:
            raise Unavailable("document is being compacted, retry")
        try:
            self._awareness_sub = await self._nats.nc.subscribe(
                doc_awareness_subject(self.doc_id), cb=self._on_awareness_msg
            )
        except nats.errors.Error as err:
            await self.stop()
            raise Unavailable("messaging unavailable") from err
        self._publish_awareness_raw(b"\x00", user_id="", kind=KIND_QUERY)
        self._maintenance = asyncio.create_task(self._maintain(), name=f"room-{self.doc_id}")

    async def _load_once(self) -> bool:
        snapshot = await doc_snapshots.get_snapshot(self._db, self.doc_id)
        self._reset(snapshot)
        sub = await self._log.subscribe(self.doc_id, snapshot.seq, self._entry_handler())
        try:
            target = await self._log.last_seq(self.doc_id)
            if not await self.wait_applied(target, LOAD_SYNC_TIMEOUT_S):
                raise Unavailable("document log replay timed out, retry")
            # A purge may have run past the snapshot we loaded while we subscribed: JetStream
            # would have started silently after the hole (DESIGN.md §7). Prove there is none.
            if await doc_snapshots.get_snapshot_seq(self._db, self.doc_id) > snapshot.seq:
                await sub.stop()
                return False
        except BaseException:
            await sub.stop()
            raise
        self._sub = sub
        return True

    def _reset(self, snapshot: doc_snapshots.Snapshot) -> None:
        self._generation += 1
        self._outbox = []
        self._tail, self._tail_bytes = [], 0
        self.snapshot_seq = snapshot.seq
        self.last_applied_seq = self.delivered_seq = snapshot.seq
        self._state = snapshot.state or EMPTY_UPDATE
        if self._state != EMPTY_UPDATE:
            # Snapshots are merged by our job from the log (which would fail on poison first), so
            # yrs' own parse is check enough; the pure-Python walk costs ~0.2 s per MB of a
            # fragmented document, on the event loop.
            try:
                call_pycrdt("snapshot", pycrdt.get_state, self._state)
            except ProtocolError as err:
                log.error("room.snapshot_unreadable", doc_id=self.doc_id, error=str(err))
                raise Unavailable("document state unreadable") from err

    async def stop(self) -> None:
        """Stop following the log; the manager has closed the peers already."""
        self.stopped = True
        self._generation += 1
        if self._maintenance is not None:
            self._maintenance.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._maintenance
        if self._awareness_sub is not None:
            with contextlib.suppress(nats.errors.Error):
                await self._awareness_sub.unsubscribe()
        if self._sub is not None:
            await self._sub.stop()
        for _, future in self._waiters:
            if not future.done():
                future.cancel()
        self._waiters.clear()
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)

    # --- peers -------------------------------------------------------------------------------

    @property
    def key(self) -> str:
        return self.doc_id

    def has_members(self) -> bool:
        return bool(self.peers)

    def join(self, peer: Peer) -> None:
        self.peers[peer.conn_id] = peer

    def leave(self, peer: Peer) -> None:
        """Remove a peer (joined or not: a session may fail before joining) and its awareness."""
        self.peers.pop(peer.conn_id, None)
        removals = self.awareness.release(peer.conn_id, time.monotonic())
        if removals:
            self._fanout_awareness(removals, origin=None)
            self._publish_awareness(peer.user_id, [c.entry for c in removals])
        if not self.peers:
            self._on_empty(self)

    # --- reading state -----------------------------------------------------------------------

    def full_state(self) -> bytes:
        """The whole document as one Yjs v1 update, pending structs included."""
        if self._tail:
            self._state = _merge([self._state, *self._tail], self.doc_id)
            self._tail, self._tail_bytes = [], 0
        return self._state

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

    # --- the update path ---------------------------------------------------------------------

    def check_budget(self, size: int) -> None:
        """Refuse an update that would take the document past `doc_max_bytes` (before publishing).

        The unmerged tail over-estimates (merging squashes), so the exact size is taken only when
        the estimate says no.
        """
        limit = self.settings.doc_max_bytes
        if len(self._state) + self._tail_bytes + self._reserved + size <= limit:
            return
        if len(self.full_state()) + self._reserved + size <= limit:
            return
        raise DocumentTooLarge(
            f"document size limit reached ({limit} bytes): update of {size} bytes refused"
        )

    async def publish(self, peer: Peer, update: bytes, msg_id: str) -> PublishAck:
        """Append a validated update to the log. Applied and fanned out when it comes back."""
        self.check_budget(len(update))
        self._reserved += len(update)
        try:
            ack = await self._log.publish(
                self.doc_id, update, msg_id=msg_id, client=peer.conn_id, user=peer.user_id
            )
        finally:
            self._reserved -= len(update)
        if ack.seq > self.last_applied_seq:
            self._expected.append((ack.seq, time.monotonic() + STALL_AFTER_S))
        return ack

    async def wait_applied(self, seq: int, timeout_s: float) -> bool:
        """Wait until every update up to `seq` is applied and delivered to local peers."""
        if self.delivered_seq >= seq:
            return True
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiters.append((seq, future))
        try:
            await asyncio.wait_for(asyncio.shield(future), timeout_s)
            return True
        except TimeoutError:
            return False
        finally:
            self._waiters = [(s, f) for s, f in self._waiters if f is not future]

    def _entry_handler(self) -> Callable[[LogEntry], Coroutine[Any, Any, None]]:
        generation = self._generation

        async def on_entry(entry: LogEntry) -> None:
            if generation == self._generation:
                self._apply_entry(entry)

        return on_entry

    def _apply_entry(self, entry: LogEntry) -> None:
        if entry.seq <= self.last_applied_seq:
            return  # overlap after a resubscribe
        self.last_applied_seq = entry.seq
        try:
            # Our publishers validated it; this stops what someone else put on the subject (S3)
            # before it reaches yrs (where a crafted update can crash the process).
            validate_update_structure(entry.update)
        except ProtocolError as err:
            POISON_UPDATES.labels(self.node_id).inc()
            log.error("room.poison_update", doc_id=self.doc_id, seq=entry.seq, error=str(err))
            self._schedule_flush()
            return
        self._append(entry.update)
        origin = entry.client if entry.node == self.node_id else None
        self._outbox.append(AppliedUpdate(entry.seq, entry.update, origin, entry.user))
        self._schedule_flush()

    def _append(self, update: bytes) -> None:
        if update == EMPTY_UPDATE:
            return
        self._tail.append(update)
        self._tail_bytes += len(update)
        threshold = max(TAIL_MIN_BYTES, len(self._state) // TAIL_STATE_FRACTION)
        if len(self._tail) >= TAIL_MAX_ENTRIES or self._tail_bytes >= threshold:
            self.full_state()

    def _schedule_flush(self) -> None:
        if not self._flush_scheduled:
            self._flush_scheduled = True
            asyncio.get_running_loop().call_soon(self._flush)

    def _flush(self) -> None:
        self._flush_scheduled = False
        updates, self._outbox = self._outbox, []
        if updates:
            batch = UpdateBatch(updates)
            for peer in list(self.peers.values()):
                self._deliver(peer, peer.deliver_updates, batch)
        self._release_waiters()

    def _release_waiters(self) -> None:
        self.delivered_seq = delivered = self.last_applied_seq
        for seq, future in self._waiters:
            if seq <= delivered and not future.done():
                future.set_result(None)

    def _deliver(self, peer: Peer, method: Callable[..., None], *args: Any) -> None:
        """Fail one, not all: a peer that cannot take a message is closed, the others go on."""
        try:
            method(*args)
        except Exception as err:
            log.error("room.deliver_failed", doc_id=self.doc_id, conn=peer.conn_id, error=repr(err))
            with contextlib.suppress(Exception):
                peer.close(CloseCode.INTERNAL_ERROR)

    # --- awareness ---------------------------------------------------------------------------

    def apply_awareness(self, peer: Peer, entries: list[AwarenessEntry]) -> list[AwarenessEntry]:
        """A local connection's awareness update; returns entries to send back to it only."""
        result = self.awareness.apply_local(peer.conn_id, peer.user_id, entries, time.monotonic())
        if result.accepted:
            self._fanout_awareness(result.accepted, origin=peer.conn_id)
            self._publish_awareness(peer.user_id, [c.entry for c in result.accepted])
        return result.nudges

    def _fanout_awareness(self, changes: list[AwarenessChange], origin: str | None) -> None:
        batch = AwarenessBatch(changes)
        for peer in list(self.peers.values()):
            self._deliver(peer, peer.deliver_awareness, batch, origin)

    def _publish_awareness(self, user_id: str, entries: list[AwarenessEntry]) -> None:
        try:
            payload = encode_awareness_entries(entries)
        except ProtocolError as err:
            log.warning("room.awareness_encode_failed", doc_id=self.doc_id, error=str(err))
            return
        self._publish_awareness_raw(payload, user_id=user_id, kind="update")

    def _publish_awareness_raw(self, payload: bytes, *, user_id: str, kind: str) -> None:
        """Core NATS, best effort: awareness is ephemeral and renewed every 15 s by clients."""
        headers = {HEADER_NODE: self.node_id, HEADER_USER: user_id, HEADER_KIND: kind}
        self._spawn(
            self._nats.nc.publish(doc_awareness_subject(self.doc_id), payload, headers=headers)
        )

    async def _on_awareness_msg(self, msg: Msg) -> None:
        headers = msg.headers or {}
        node = headers.get(HEADER_NODE)
        if self.stopped or not node or node == self.node_id:
            return
        if headers.get(HEADER_KIND) == KIND_QUERY:
            for user_id, entries in self.awareness.local_states().items():
                self._publish_awareness(user_id, entries)
            return
        try:
            entries = decode_awareness(msg.data)
        except ProtocolError as err:
            log.warning("room.remote_awareness_malformed", doc_id=self.doc_id, error=str(err))
            return
        changes = self.awareness.apply_remote(
            node, headers.get(HEADER_USER) or None, entries, time.monotonic()
        )
        if changes:
            self._fanout_awareness(changes, origin=None)

    # --- upkeep ------------------------------------------------------------------------------

    async def _maintain(self) -> None:
        timeout = self.settings.awareness_timeout_s
        interval = min(max(timeout / 10, MAINTENANCE_MIN_INTERVAL_S), MAINTENANCE_MAX_INTERVAL_S)
        while not self.stopped:
            await asyncio.sleep(interval)
            try:
                self._upkeep(time.monotonic(), timeout)
            except Exception as err:
                log.error("room.upkeep_failed", doc_id=self.doc_id, error=repr(err))

    def _upkeep(self, now: float, timeout: float) -> None:
        expired = self.awareness.expire(now, timeout)
        if expired:
            self._fanout_awareness(expired, origin=None)
        for peer in list(self.peers.values()):
            self._deliver(peer, peer.renew_presence, now)
        while self._expected and self._expected[0][0] <= self.last_applied_seq:
            self._expected.popleft()
        if self._expected and self._expected[0][1] < now:
            log.warning("room.consumer_stalled", doc_id=self.doc_id, waiting=self._expected[0][0])
            self._expected.clear()
            self._spawn(self.resubscribe("stalled"))

    async def resubscribe(self, reason: str) -> None:
        """Recreate the log subscription from `last_applied_seq` (after a NATS reconnect or a
        stall). If a snapshot moved past what we hold, the log may have been purged behind it:
        take the snapshot first (applying a snapshot over our doc is idempotent)."""
        if self.stopped:
            return
        async with self._resubscribing:
            ROOM_RESUBSCRIBES.labels(reason).inc()
            try:
                await self._catch_up_from_snapshot()
            except (Unavailable, ProtocolError) as err:
                log.warning("room.snapshot_check_failed", doc_id=self.doc_id, error=str(err))
            old = self._sub
            self._generation += 1
            self._sub = await self._log.subscribe(
                self.doc_id, self.last_applied_seq, self._entry_handler()
            )
            if old is not None:
                await old.stop()
            log.info(
                "room.resubscribed", doc_id=self.doc_id, reason=reason, seq=self.last_applied_seq
            )

    async def _catch_up_from_snapshot(self) -> None:
        snapshot = await doc_snapshots.get_snapshot(self._db, self.doc_id)
        if snapshot.seq <= self.last_applied_seq or not snapshot.state:
            return
        call_pycrdt("snapshot", pycrdt.get_state, snapshot.state)
        before = self.state_vector()
        self._append(snapshot.state)
        self.snapshot_seq = self.last_applied_seq = snapshot.seq
        missed = self.diff(before)
        self._outbox.append(AppliedUpdate(snapshot.seq, missed, None, None))
        self._schedule_flush()

    def _spawn(self, coro: Coroutine[Any, Any, Any]) -> None:
        task = asyncio.create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._task_done)

    def _task_done(self, task: asyncio.Task[Any]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.warning("room.task_failed", doc_id=self.doc_id, error=repr(task.exception()))


def _merge(updates: list[bytes], doc_id: str) -> bytes:
    """Merge updates; one that yrs refuses is dropped (logged) rather than losing the others."""
    present = [u for u in updates if u and u != EMPTY_UPDATE]
    if not present:
        return EMPTY_UPDATE
    if len(present) == 1:
        return present[0]
    try:
        return call_pycrdt("merge", pycrdt.merge_updates, *present)
    except ProtocolError:
        merged = present[0]
        for update in present[1:]:
            try:
                merged = call_pycrdt("merge", pycrdt.merge_updates, merged, update)
            except ProtocolError as err:
                POISON_UPDATES.labels("merge").inc()
                log.error("room.unmergeable_update", doc_id=doc_id, error=str(err))
        return merged
