"""One document's log, followed in order: the room's replica of `collab.doc.<id>.update`.

The follower loads the latest Postgres snapshot plus the subject after the snapshot's sequence
with no gap, then keeps one ordered subscription and hands every entry to its sink (the room)
exactly once, in stream order (`seq <= last_applied_seq` is skipped). So `last_applied_seq` is a
true prefix: the sink holds every update of the document up to it.

* Entries are validated before they reach yrs: our publishers validated them, this stops what
  someone else put on the subject (RELIABILITY S3), where a crafted update could crash the
  process. A poison entry is skipped, counted and logged; its seq still counts as applied. An
  entry at a seq this node's own publish was acknowledged with (a new message, not a duplicate:
  a duplicate's seq may hold someone else's bytes under the same msg id) holds the bytes that
  publish validated, so it is not walked again (headers could be forged, a PubAck cannot).
* A room may publish without asking for a PubAck (`await_echo`, `Room.publish`): the entry that
  comes back with the same msg id *and the same bytes* is the proof of storage, and it is not
  walked either (it is exactly what the publish validated, whoever's message it is).
* A published update must come back through the subscription; if it has not after
  `STALL_AFTER_S` the consumer is stuck and is recreated from `last_applied_seq` (also after a
  NATS reconnect). If a snapshot moved past what we hold meanwhile, the log may have been purged
  behind it: the snapshot is taken first.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import Callable
from typing import Protocol

import structlog
from prometheus_client import Counter

from bus.doc_log import DocLog, LogEntry, LogSubscription
from core.errors import Unavailable
from live.merged_doc import POISON_UPDATES
from live.protocol import ProtocolError, validate_update_structure
from models.db import Database
from models.repo import doc_snapshots

log = structlog.get_logger(__name__)

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


class FollowerSink(Protocol):
    """What the follower feeds (the room)."""

    def reset(self, snapshot: doc_snapshots.Snapshot) -> None:
        """Start over from `snapshot` (raises Unavailable if its state is unreadable)."""

    def applied(self, entry: LogEntry | None) -> None:
        """The next seq was applied: `entry`, or None for a skipped poison entry."""

    def caught_up(self, snapshot: doc_snapshots.Snapshot) -> None:
        """A snapshot newer than what is held replaces the missing part of the log."""

    async def wait_applied(self, seq: int, timeout_s: float) -> bool: ...


class LogFollower:
    def __init__(
        self,
        doc_id: str,
        *,
        db: Database,
        doc_log: DocLog,
        node_id: str,
        sink: FollowerSink,
    ) -> None:
        self.doc_id = doc_id
        self.node_id = node_id
        self.last_applied_seq = 0
        self.snapshot_seq = 0
        self._db = db
        self._log = doc_log
        self._sink = sink
        self._generation = 0
        self._sub: LogSubscription | None = None
        self._resubscribing = asyncio.Lock()
        self._expected: deque[tuple[int, float]] = deque()  # (published seq, deadline)
        self._validated: set[int] = set()  # seqs of our own new messages, not yet applied
        # msg id -> (bytes published, future of the seq they came back with): see `await_echo`
        self._echoes: dict[str, tuple[bytes, asyncio.Future[int | None]]] = {}
        self.stopped = False

    # --- lifecycle ---------------------------------------------------------------------------

    async def load(self) -> None:
        """Snapshot + log with no gap, then keep following."""
        for attempt in range(LOAD_ATTEMPTS):
            if await self._load_once():
                return
            log.info("room.reload_after_snapshot", doc_id=self.doc_id, attempt=attempt)
        raise Unavailable("document is being compacted, retry")

    async def _load_once(self) -> bool:
        snapshot = await doc_snapshots.get_snapshot(self._db, self.doc_id)
        self._generation += 1
        self.snapshot_seq = self.last_applied_seq = snapshot.seq
        self._sink.reset(snapshot)
        sub = await self._log.subscribe(self.doc_id, snapshot.seq, self._entry_handler())
        try:
            target = await self._log.last_seq(self.doc_id)
            if not await self._sink.wait_applied(target, LOAD_SYNC_TIMEOUT_S):
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

    async def stop(self) -> None:
        self.stopped = True
        self._generation += 1
        if self._sub is not None:
            await self._sub.stop()

    # --- entries -----------------------------------------------------------------------------

    def _entry_handler(self) -> Callable[[LogEntry], None]:
        generation = self._generation

        def on_entry(entry: LogEntry) -> None:
            if generation == self._generation:
                self.apply(entry)

        return on_entry

    def apply(self, entry: LogEntry) -> None:
        """One entry of the subscription, in stream order."""
        if entry.seq <= self.last_applied_seq:
            return  # overlap after a resubscribe
        self.last_applied_seq = entry.seq
        if not self._validated_here(entry) and not self._log.vouched(self.doc_id, entry):
            try:
                validate_update_structure(entry.update)
            except ProtocolError as err:
                POISON_UPDATES.labels(self.node_id).inc()
                log.error("room.poison_update", doc_id=self.doc_id, seq=entry.seq, error=str(err))
                self._sink.applied(None)
                return
        self._sink.applied(entry)

    def await_echo(self, msg_id: str, update: bytes) -> asyncio.Future[int | None] | None:
        """A future of the seq at which `update`, about to be published under `msg_id`, comes
        back through the subscription (None: that msg id is already awaited). The caller must
        `forget_echo` it, resolved or not."""
        if msg_id in self._echoes:
            return None
        future: asyncio.Future[int | None] = asyncio.get_running_loop().create_future()
        self._echoes[msg_id] = (update, future)
        return future

    def forget_echo(self, msg_id: str) -> None:
        self._echoes.pop(msg_id, None)

    def _validated_here(self, entry: LogEntry) -> bool:
        """Whether `entry` holds bytes this node validated before publishing them: at a seq our
        PubAck named (`expect`), or an awaited echo (`_is_echo`, which resolves its publish)."""
        if entry.seq in self._validated:
            self._validated.discard(entry.seq)
            return True
        return bool(self._echoes) and self._is_echo(entry)

    def _is_echo(self, entry: LogEntry) -> bool:
        """Whether `entry` is an awaited publish coming back: same msg id, same bytes. Another
        message under the msg id (a forgery, or someone else's first) is not: that publish was
        deduplicated by JetStream and its caller learns so from `DocLog.publish`."""
        msg_id = entry.msg_id or ""
        awaited = self._echoes.get(msg_id)
        if awaited is None or awaited[0] != entry.update:
            return False
        del self._echoes[msg_id]
        if not awaited[1].done():
            awaited[1].set_result(entry.seq)
        return True

    # --- stalls and resubscribes -------------------------------------------------------------

    def expect(self, seq: int, *, validated: bool = False) -> None:
        """A publish got `seq`: it must come back through the subscription. `validated`: the
        message at `seq` is a new one this node validated before publishing it."""
        if seq > self.last_applied_seq:
            self._expected.append((seq, time.monotonic() + STALL_AFTER_S))
            if validated:
                self._validated.add(seq)

    def stalled(self, now: float) -> bool:
        """Whether a published update is overdue (then the expectations are cleared)."""
        while self._expected and self._expected[0][0] <= self.last_applied_seq:
            self._expected.popleft()
        if self._validated and min(self._validated) <= self.last_applied_seq:
            # passed over without being applied here (a snapshot caught us up past them)
            self._validated = {seq for seq in self._validated if seq > self.last_applied_seq}
        if self._expected and self._expected[0][1] < now:
            log.warning("room.consumer_stalled", doc_id=self.doc_id, waiting=self._expected[0][0])
            self._expected.clear()
            return True
        return False

    async def resubscribe(self, reason: str) -> None:
        """Recreate the log subscription from `last_applied_seq` (after a NATS reconnect or a
        stall). If a snapshot moved past what we hold, the log may have been purged behind it:
        take the snapshot first (applying a snapshot over our state is idempotent)."""
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
        self._sink.caught_up(snapshot)
        self.snapshot_seq = self.last_applied_seq = snapshot.seq
