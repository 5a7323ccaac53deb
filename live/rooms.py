"""The node's document rooms and sockets: the document kind of the socket hub (live/hub.py).

One `RoomManager` per node (`ctx.rooms`, a component with start/stop). The hub does
what every socket kind does (re-checks on revocation signals and NATS reconnects, the presence
heartbeat, shutdown with 1001 and a drain, rooms shared by concurrent joiners); this adds:

* `acquire(doc_id)` returns the loaded room, sharing one load between concurrent joiners; a room
  whose last connection left is unloaded after `room_unload_grace_s` unless someone comes back.
  If the room applied updates beyond the snapshot it loaded, the unload also compacts the
  document in the background (`services.snapshots.snapshot_document`, which reads the log, not
  the room): the next joiner loads one snapshot instead of replaying a log the periodic job would
  leave alone below `snapshot_min_updates`.
* A changed role applies in place (live/session.py); lost access closes with 4403.
* After a NATS reconnect every room re-creates its log subscription from the last applied
  sequence.
* `stop()` (SIGTERM) closes every socket with 1001 "going away" -- y-websocket clients reconnect
  and resync elsewhere -- after letting in-flight publishes finish. It does not snapshot: the
  clients reload these documents on other nodes at that very moment, a node may hold many rooms
  and its shutdown has a deadline, and nothing depends on it (the log keeps every update; the
  other nodes' unloads and the periodic job compact it). Unload snapshots still running when the
  node stops are cancelled, which is safe at any step (rolled back, or a purge left for later).
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any

import structlog

from bus.doc_log import DocLog, LogEntry
from core.errors import Unavailable
from live.hub import Hub, RoomRegistry
from live.room import Room
from live.session import Session, SessionDeps
from models.cache import CacheUnavailable
from services.presence import PresenceEntry, PresenceService
from services.snapshots import SnapshotResult, snapshot_document

if TYPE_CHECKING:
    from services.deps import Deps

log = structlog.get_logger(__name__)

# Unload snapshots running at once: each holds a pooled Postgres connection for its transaction
# (default pool: 10) and merges on the IOLoop; a burst of unloads (a mass disconnect) must leave
# the pool to the requests. The rest wait their turn; the periodic job covers what never runs.
UNLOAD_SNAPSHOTS_AT_ONCE = 2


class RoomManager(Hub[Session]):
    def __init__(self, ctx: Deps) -> None:
        super().__init__(ctx)
        self.doc_log: DocLog = ctx.doc_log
        self.presence = PresenceService(ctx.cache, ctx.settings.presence_ttl_s)
        self.registry: RoomRegistry[Room] = RoomRegistry(
            self._load, grace_s=self.settings.room_unload_grace_s, unloaded=self._unloaded
        )
        self._unload_snapshots = asyncio.Semaphore(UNLOAD_SNAPSHOTS_AT_ONCE)

    @property
    def rooms(self) -> dict[str, Room]:
        return self.registry.rooms

    @property
    def sessions(self) -> dict[str, Session]:
        return self.sockets

    def deps(self) -> SessionDeps:
        return SessionDeps(rooms=self, db=self.ctx.db, doc_log=self.doc_log, settings=self.settings)

    # --- rooms -------------------------------------------------------------------------------

    async def acquire(self, doc_id: str) -> Room:
        """The loaded room of `doc_id`; concurrent callers share one load."""
        return await self.registry.acquire(doc_id)

    async def _load(self, doc_id: str) -> Room:
        room = Room(
            doc_id,
            db=self.ctx.db,
            doc_log=self.doc_log,
            nats_conn=self.ctx.nats,
            settings=self.settings,
            on_empty=self.registry.release,
        )
        await room.start()
        log.info("room.loaded", doc_id=doc_id, seq=room.last_applied_seq)
        return room

    def recent_entries(
        self, doc_id: str, after_seq: int, through_seq: int
    ) -> list[LogEntry] | None:
        """The entries of `doc_id` after `after_seq` from its room's tail of the log, if the room
        is loaded here and holds all of them up to `through_seq` (the projection refresher's
        `RecentEntriesReader`; what precedes `after_seq` is forgotten); None otherwise."""
        room = self.rooms.get(doc_id)
        return None if room is None else room.recent.take_after(after_seq, through_seq)

    def _unloaded(self, room: Room) -> None:
        if room.last_applied_seq > room.snapshot_seq:  # a read-only visit leaves nothing to do
            self.ctx.spawn(
                self._snapshot_unloaded(room.doc_id), name=f"unload-snapshot-{room.doc_id}"
            )
        log.info("room.unloaded", doc_id=room.doc_id, seq=room.last_applied_seq)

    async def _snapshot_unloaded(self, doc_id: str) -> SnapshotResult | None:
        """Compact the document of a room that just unloaded; an outage is left to the job."""
        async with self._unload_snapshots:
            try:
                result = await snapshot_document(self.ctx, doc_id)
            except Unavailable as err:
                log.warning("room.unload_snapshot_failed", doc_id=doc_id, error=err.message)
                return None
        log.info("room.unload_snapshot", doc_id=doc_id, status=result.status, seq=result.seq)
        return result

    async def stop_rooms(self) -> None:
        await self.registry.stop()

    def resync_rooms(self) -> None:
        for room in list(self.rooms.values()):
            self.ctx.spawn(room.resubscribe("nats_reconnect"), name=f"resubscribe-{room.doc_id}")

    # --- presence (Redis) --------------------------------------------------------------------

    def joined(self, conn: Session) -> None:
        self.ctx.spawn(self.renew_presence([conn]), name="presence-add")

    async def renew_presence(self, conns: list[Session]) -> None:
        entries = [
            PresenceEntry(
                doc_id=s.doc_id,
                conn_id=s.conn_id,
                user_id=s.user_id,
                display_name=s.identity.display_name,
                node=self.ctx.node_id,
                since=s.connected_at,
                kind=s.kind,
            )
            for s in conns
            if not s.closed
        ]
        try:
            await self.presence.add(entries)
        except CacheUnavailable as err:  # Redis down: presence degrades, editing does not
            log.info("presence.write_failed", error=str(err))

    async def forget(self, conn: Session) -> None:
        try:
            await self.presence.remove(conn.doc_id, conn.conn_id)
        except CacheUnavailable as err:
            log.info("presence.remove_failed", error=str(err))

    def describe(self) -> dict[str, Any]:
        """For ops/metrics: what this node holds."""
        return {
            "rooms": {
                doc_id: {"seq": room.last_applied_seq, "peers": len(room.peers)}
                for doc_id, room in self.rooms.items()
            },
            "sockets": len(self.sockets),
        }
