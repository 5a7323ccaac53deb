"""One document's room on this node: it coordinates the document's state, its log, its local
connections and its awareness.

A room is a cache (DESIGN.md §1): it is built from the latest Postgres snapshot plus the document's
JetStream subject after the snapshot's sequence, and can be dropped and rebuilt at any time. Its
parts, each in its own module:

* `MergedDoc` (live/merged_doc.py) -- the document as one Yjs update, merged or (when provably
  lossless) re-encoded (why not a live pycrdt `Doc`: see there); pure, no I/O;
* `LogFollower` (live/log_follower.py) -- the ordered subscription: load with no gap, every entry
  exactly once and in order, poison skipped, stalls and NATS reconnects resubscribed;
* `AwarenessRelay` (live/awareness_relay.py) -- the awareness registry and its core-NATS relay;
* the room itself: the peers, publishing (size budget), coalesced fan-out, ack waiters, upkeep.

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
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from functools import cached_property
from typing import Any, Protocol, TypeVar

import nats.errors
import pycrdt
import structlog

from bus.connection import NatsConnection
from bus.doc_log import DocLog, LogEntry, PublishAck
from core.errors import AppError, CloseCode, Unavailable
from core.yjs_state import single_client
from live import envelope
from live.awareness import AwarenessChange, AwarenessRegistry
from live.awareness_relay import AwarenessRelay
from live.doc_events import DocEvents
from live.log_follower import LogFollower
from live.merged_doc import POISON_UPDATES, MergedDoc
from live.protocol import (
    AwarenessEntry,
    ProtocolError,
    call_pycrdt,
    encode_awareness,
    encode_awareness_entries,
    encode_update,
)
from live.recent_entries import RecentEntries
from live.tasks import TaskSet
from models.db import Database
from models.repo import doc_snapshots
from server.settings import Settings

log = structlog.get_logger(__name__)

__all__ = ["POISON_UPDATES", "AppliedUpdate", "AwarenessBatch", "DocumentTooLarge", "Room"]

MAINTENANCE_MIN_INTERVAL_S = 0.2
MAINTENANCE_MAX_INTERVAL_S = 3.0  # the y-protocols check interval
#: Awareness renewals (a state sent again unchanged, to keep it alive: y-protocols renews every
#: 15 s and drops a state after 30 s) wait this long to be sent, with the others of the window.
RENEWAL_BATCH_S = 1.0
# How long a publish confirmed by its echo waits for it before asking JetStream (`Room.publish`):
# the echo takes about a millisecond; past this the update was a duplicate, refused, or is late
# behind an outage, and a PubAck request with the same msg id tells which.
ECHO_TIMEOUT_S = 1.0
# How long after this room stores an update its tail of the log is kept, in projection refresher
# periods: the refresher reads within a period or a few (it pauses longer after a slow batch);
# later than that it reads the log instead.
TAIL_HOLD_PERIODS = 10
_T = TypeVar("_T")


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
        """Whether every update of the batch came from `conn_id` (asked once per peer)."""
        return self._senders == {conn_id}

    @cached_property
    def _senders(self) -> set[str | None]:
        return {u.conn_id for u in self.updates}

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

    def deliver_awareness(self, batch: AwarenessBatch) -> None: ...

    def deliver_event(self, seq: int, event: dict[str, Any]) -> None: ...

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
        self._log = doc_log
        self._on_empty = on_empty
        self.doc = MergedDoc(doc_id)
        self.follower = LogFollower(doc_id, db=db, doc_log=doc_log, node_id=self.node_id, sink=self)
        self.relay = AwarenessRelay(
            doc_id, node_id=self.node_id, nats_conn=nats_conn, fan_out=self._fanout_awareness
        )
        # The document's JSON events (comment threads), for the peers that want them.
        self.events = DocEvents(doc_id, nats_conn, self._fanout_event)
        self.delivered_seq = 0  # every update up to here has been handed to the local peers
        # The last entries applied, for this node's projection refresher (live/recent_entries.py):
        # held for a few of its periods after each update this room stores (none if it is off).
        self.recent = RecentEntries()
        self._recent_hold_s = TAIL_HOLD_PERIODS * settings.projection_refresh_s
        self.peers: dict[str, Peer] = {}
        self._reserved = 0  # bytes of updates being published right now (budget)
        self._outbox: list[AppliedUpdate] = []
        self._awareness_outbox: list[AwarenessChange] = []
        self._renewals: list[AwarenessChange] = []
        self._renewals_due: asyncio.TimerHandle | None = None
        self._flush_scheduled = False
        self._waiters: list[tuple[int, asyncio.Future[None]]] = []
        self._tasks = TaskSet(doc_id)
        self._maintenance: asyncio.Task[None] | None = None
        self.stopped = False

    @property
    def last_applied_seq(self) -> int:
        return self.follower.last_applied_seq

    @property
    def snapshot_seq(self) -> int:
        return self.follower.snapshot_seq

    @property
    def awareness(self) -> AwarenessRegistry:
        return self.relay.registry

    # --- lifecycle ---------------------------------------------------------------------------

    async def start(self) -> None:
        """Load snapshot + log with no gap, then follow the log and other nodes' awareness."""
        await self.follower.load()
        try:
            await self.relay.start()
        except nats.errors.Error as err:
            await self.stop()
            raise Unavailable("messaging unavailable") from err
        self._maintenance = asyncio.create_task(self._maintain(), name=f"room-{self.doc_id}")

    async def stop(self) -> None:
        """Stop following the log; the manager has closed the peers already."""
        self.stopped = True
        if self._renewals_due is not None:
            self._renewals_due.cancel()
        if self._maintenance is not None:
            self._maintenance.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._maintenance
        await self.relay.stop()
        await self.events.stop()
        await self.follower.stop()
        for _, future in self._waiters:
            if not future.done():
                future.cancel()
        self._waiters.clear()
        await self._tasks.wait()

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
        self.relay.release(peer.conn_id, peer.user_id, time.monotonic())
        if not self.peers:
            self._on_empty(self)

    # --- reading state -----------------------------------------------------------------------

    def full_state(self) -> bytes:
        """The whole document as one Yjs v1 update, pending structs included."""
        return self.doc.full_state()

    def state_vector(self) -> bytes:
        return self.doc.state_vector()

    def diff(self, state_vector: bytes) -> bytes:
        """Everything a peer with `state_vector` lacks, pending structs included (SyncStep2)."""
        return self.doc.diff(state_vector)

    def would_change(self, update: bytes) -> bool:
        """Whether `update` adds anything to the document (see `MergedDoc.would_change`)."""
        return self.doc.would_change(update)

    # --- the update path ---------------------------------------------------------------------

    def check_budget(self, size: int) -> None:
        """Refuse an update that would take the document past `doc_max_bytes` (before publishing).

        The unmerged tail over-estimates (merging squashes), so the exact size is taken only when
        the estimate says no.
        """
        limit = self.settings.doc_max_bytes
        if self.doc.size_estimate() + self._reserved + size <= limit:
            return
        if self.doc.size() + self._reserved + size <= limit:
            return
        raise DocumentTooLarge(
            f"document size limit reached ({limit} bytes): update of {size} bytes refused"
        )

    async def publish(
        self, peer: Peer, update: bytes, msg_id: str, *, confirm_by_echo: bool = False
    ) -> PublishAck:
        """Append a validated update to the log. Applied and fanned out when it comes back.

        `confirm_by_echo`: publish without a PubAck and take the update coming back through the
        room's subscription as the acknowledgement (`_publish_by_echo`); for msg ids that are
        rarely re-sent, since a duplicate is only told apart after `ECHO_TIMEOUT_S`."""
        self.check_budget(len(update))
        self._reserved += len(update)
        self.recent.hold(self._recent_hold_s)  # from before the update is applied here
        try:
            if confirm_by_echo:
                seq = await self._publish_by_echo(peer, update, msg_id)
                if seq is not None:
                    self._log.stored(self.doc_id, seq)
                    return PublishAck(seq, False)
            ack = await self._append(self._log.publish, peer, update, msg_id)
        finally:
            self._reserved -= len(update)
        # Callers validated `update` (see Session); a new message at ack.seq is exactly it.
        self.follower.expect(ack.seq, validated=not ack.duplicate)
        return ack

    def _append(
        self, method: Callable[..., Awaitable[_T]], peer: Peer, update: bytes, msg_id: str
    ) -> Awaitable[_T]:
        """`DocLog.publish` or `DocLog.send` of `peer`'s update, which its session validated."""
        return method(
            self.doc_id,
            update,
            msg_id=msg_id,
            client=peer.conn_id,
            user=peer.user_id,
            validated=True,
        )

    async def _publish_by_echo(self, peer: Peer, update: bytes, msg_id: str) -> int | None:
        """The seq `update` was stored at, known from its own message coming back (then it is
        already applied here); None when it did not come back within `ECHO_TIMEOUT_S` (a
        duplicate, a full subject, an outage: `DocLog.publish` with the same msg id says which).

        Why: the stored message comes back through the room's ordered consumer anyway, so
        waiting for it instead of a PubAck acknowledges only what JetStream stored, as before,
        with one message per update less (issue 15)."""
        echo = self.follower.await_echo(msg_id, update)
        if echo is None:
            return None
        timer = asyncio.get_running_loop().call_later(ECHO_TIMEOUT_S, _give_up, echo)
        try:
            sent = await self._append(self._log.send, peer, update, msg_id)
            return await echo if sent else None
        finally:
            timer.cancel()
            self.follower.forget_echo(msg_id)

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

    # --- what the log follower feeds (`FollowerSink`) ------------------------------------------

    def reset(self, snapshot: doc_snapshots.Snapshot) -> None:
        self._outbox = []
        self.delivered_seq = snapshot.seq
        self.recent.restart(snapshot.seq)
        try:
            self.doc.reset(snapshot.state, compact=snapshot.compact)
        except ProtocolError as err:
            log.error("room.snapshot_unreadable", doc_id=self.doc_id, error=str(err))
            raise Unavailable("document state unreadable") from err

    def applied(self, entry: LogEntry | None) -> None:
        if entry is None:  # a poison entry, skipped: the tail has a gap there
            self.recent.restart(self.last_applied_seq)
        else:
            self.recent.add(entry)
            self.doc.append(entry.update)
            origin = entry.client if entry.node == self.node_id else None
            self._outbox.append(AppliedUpdate(entry.seq, entry.update, origin, entry.user))
        self._schedule_flush()

    def caught_up(self, snapshot: doc_snapshots.Snapshot) -> None:
        call_pycrdt("snapshot", pycrdt.get_state, snapshot.state)
        before = self.doc.state_vector()
        self.doc.absorb(snapshot.state)
        missed = self.doc.diff(before)
        self.recent.restart(snapshot.seq)
        self._outbox.append(AppliedUpdate(snapshot.seq, missed, None, None))
        self._schedule_flush()

    async def resubscribe(self, reason: str) -> None:
        """After a NATS reconnect or a stall (see `LogFollower.resubscribe`)."""
        await self.follower.resubscribe(reason)

    # --- fan-out -----------------------------------------------------------------------------

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
        changes, self._awareness_outbox = self._awareness_outbox, []
        if changes:
            awareness = AwarenessBatch(changes)
            for peer in list(self.peers.values()):
                self._deliver(peer, peer.deliver_awareness, awareness)

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
        return self.relay.apply_local(peer.conn_id, peer.user_id, entries, time.monotonic())

    def _fanout_event(self, seq: int, event: dict[str, Any]) -> None:
        for peer in list(self.peers.values()):
            self._deliver(peer, peer.deliver_event, seq, event)

    def _fanout_awareness(self, changes: list[AwarenessChange]) -> None:
        """Changes go out with the loop turn's flush, all of the turn's in one frame per peer;
        renewals with the others of their second (`_flush_renewals`).

        Every provider renews its state every 15 s and the room sends each renewal to every
        peer; each stock provider then sends what it received back (live/session.py). Providers
        that connected together renew together, so a room of twenty made forty frames in and
        out per renewal, in bursts -- the bursts that set the p99 of a busy node (issue 15).
        Entries keep their order (y-protocols applies them one by one, the clock decides: a
        renewal sent after a newer change of the same state is ignored by the peers).
        """
        renewals = [change for change in changes if not change.changed]
        if len(renewals) < len(changes):
            self._awareness_outbox.extend(changes)
            self._schedule_flush()
            return
        self._renewals.extend(renewals)
        if self._renewals_due is None:
            loop = asyncio.get_running_loop()
            self._renewals_due = loop.call_later(RENEWAL_BATCH_S, self._flush_renewals)

    def _flush_renewals(self) -> None:
        """The renewals of the last `RENEWAL_BATCH_S` join the next flush's frame. A renewal only
        keeps a state alive (its clock and the same state), so the second it waits is nothing
        to a peer's 30 s timeout; batched, a room-wide renewal burst (every provider that
        connected with the others renews with them) costs each peer one frame in and one echo
        out per second instead of one per renewal."""
        self._renewals_due = None
        renewals, self._renewals = self._renewals, []
        self._awareness_outbox.extend(renewals)
        self._schedule_flush()

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
        self.relay.expire(now, timeout)
        for peer in list(self.peers.values()):
            self._deliver(peer, peer.renew_presence, now)
        if self.follower.stalled(now):
            self._tasks.spawn(self.follower.resubscribe("stalled"))


def _give_up(echo: asyncio.Future[int | None]) -> None:
    if not echo.done():
        echo.set_result(None)
