"""The node's rooms and sockets: load rooms on demand, unload idle ones, act on revocations.

One `RoomManager` per node (`ctx.services["rooms"]`, a component with start/stop):

* `acquire(doc_id)` returns the loaded room, sharing one load between concurrent joiners; a room
  whose last connection left is unloaded after `room_unload_grace_s` unless someone comes back.
  If the room applied updates beyond the snapshot it loaded, the unload also compacts the
  document in the background (`services.snapshots.snapshot_document`, which reads the log, not
  the room): the next joiner loads one snapshot instead of replaying a log the periodic job would
  leave alone below `snapshot_min_updates`.
* Revocation signals (streams/revocations.py) re-check the affected sockets within a second: a
  revoked session is closed with 4401, lost access with 4403, a changed role applies in place.
* After a NATS reconnect the signals may have been missed: every socket is re-checked, and every
  room re-creates its log subscription from the last applied sequence.
* `stop()` (SIGTERM) closes every socket with 1001 "going away" -- y-websocket clients reconnect
  and resync elsewhere -- after letting in-flight publishes finish. It does not snapshot: the
  clients reload these documents on other nodes at that very moment, a node may hold many rooms
  and its shutdown has a deadline, and nothing depends on it (the log keeps every update; the
  other nodes' unloads and the periodic job compact it). Unload snapshots still running when the
  node stops are cancelled, which is safe at any step (rolled back, or a purge left for later).
"""

from __future__ import annotations

import asyncio
import itertools
from typing import TYPE_CHECKING, Any

import structlog

from core.errors import AppError, Unauthorized, Unavailable
from models.cache import CacheUnavailable
from server.metrics import OPEN_WEBSOCKETS
from services import policy
from services.auth_guard import authenticate_token
from services.permissions_cache import ANY_USER
from services.policy import Resource
from services.presence import PresenceEntry, PresenceService
from services.snapshots import SnapshotResult, snapshot_document
from streams.doc_log import DocLog
from streams.revocations import Revocation, subscribe_revocations
from streams.room import Room
from streams.session import Session, SessionDeps

if TYPE_CHECKING:
    from server.context import AppContext

log = structlog.get_logger(__name__)

# SIGTERM: how long sockets get to finish the message they are processing (a publish retries for
# up to doc_log.PUBLISH_DEADLINE_S) before the rooms stop.
DRAIN_TIMEOUT_S = 8.0
# Unload snapshots running at once: each holds a pooled Postgres connection for its transaction
# (default pool: 10) and merges on the IOLoop; a burst of unloads (a mass disconnect) must leave
# the pool to the requests. The rest wait their turn; the periodic job covers what never runs.
UNLOAD_SNAPSHOTS_AT_ONCE = 2


class RoomManager:
    def __init__(self, ctx: AppContext) -> None:
        self.ctx = ctx
        self.settings = ctx.settings
        self.doc_log: DocLog = ctx.services.get("doc_log") or DocLog(ctx.nats, ctx.node_id)
        self.presence = PresenceService(ctx.cache, ctx.settings.presence_ttl_s)
        self.rooms: dict[str, Room] = {}
        self.sessions: dict[str, Session] = {}
        self._loading: dict[str, asyncio.Task[Room]] = {}
        self._unload_timers: dict[str, asyncio.TimerHandle] = {}
        self._waiters: dict[str, int] = {}
        self._ids = itertools.count(1)
        self._heartbeat: asyncio.Task[None] | None = None
        self._stopping = False
        self._unload_snapshots = asyncio.Semaphore(UNLOAD_SNAPSHOTS_AT_ONCE)

    # --- lifecycle ---------------------------------------------------------------------------

    async def start(self) -> None:
        await subscribe_revocations(self.ctx.nats, self._on_revocation)
        self.ctx.nats.on_reconnect(self._on_reconnect)
        self._heartbeat = asyncio.create_task(self._presence_heartbeat(), name="presence")

    async def stop(self) -> None:
        self._stopping = True
        if self._heartbeat is not None:
            self._heartbeat.cancel()
        sessions = list(self.sessions.values())
        for session in sessions:
            session.close(1001, "server shutting down, reconnect")
        if sessions:
            await asyncio.wait(
                [asyncio.ensure_future(s.wait_closed()) for s in sessions], timeout=DRAIN_TIMEOUT_S
            )
        for handle in self._unload_timers.values():
            handle.cancel()
        rooms, self.rooms = list(self.rooms.values()), {}
        await asyncio.gather(*(room.stop() for room in rooms), return_exceptions=True)
        await self._forget_presence(sessions)

    def deps(self) -> SessionDeps:
        return SessionDeps(rooms=self, db=self.ctx.db, doc_log=self.doc_log, settings=self.settings)

    def new_conn_id(self) -> str:
        return f"{self.ctx.node_id}-{next(self._ids)}"

    # --- rooms -------------------------------------------------------------------------------

    async def acquire(self, doc_id: str) -> Room:
        """The loaded room of `doc_id`; concurrent callers share one load."""
        timer = self._unload_timers.pop(doc_id, None)
        if timer is not None:
            timer.cancel()
        room = self.rooms.get(doc_id)
        if room is not None:
            return room
        task = self._loading.get(doc_id)
        if task is None:
            task = asyncio.create_task(self._load(doc_id), name=f"load-{doc_id}")
            self._loading[doc_id] = task
        self._waiters[doc_id] = self._waiters.get(doc_id, 0) + 1
        try:
            return await asyncio.shield(task)
        finally:
            self._waiter_done(doc_id)

    def _waiter_done(self, doc_id: str) -> None:
        """The last caller of a load is back. It joins before yielding to the loop (the sessions'
        `_open`), so the unload clock started here cannot fire under it; if it gave up instead
        (cancelled, socket closed), the clock makes sure the room still unloads."""
        left = self._waiters.get(doc_id, 1) - 1
        if left > 0:
            self._waiters[doc_id] = left
            return
        self._waiters.pop(doc_id, None)
        room = self.rooms.get(doc_id)
        if room is not None and not room.peers:
            self._room_empty(room)

    async def _load(self, doc_id: str) -> Room:
        try:
            room = Room(
                doc_id,
                db=self.ctx.db,
                doc_log=self.doc_log,
                nats_conn=self.ctx.nats,
                settings=self.settings,
                on_empty=self._room_empty,
            )
            await room.start()
            self.rooms[doc_id] = room
            # Callers still waiting for this load start the unload clock when they are back
            # (`_waiter_done`); started here it could fire before they join (a short grace).
            if not self._waiters.get(doc_id):
                self._room_empty(room)
            log.info("room.loaded", doc_id=doc_id, seq=room.last_applied_seq)
            return room
        finally:
            self._loading.pop(doc_id, None)

    def _room_empty(self, room: Room) -> None:
        if self._stopping or self.rooms.get(room.doc_id) is not room:
            return
        old = self._unload_timers.pop(room.doc_id, None)
        if old is not None:
            old.cancel()
        self._unload_timers[room.doc_id] = asyncio.get_running_loop().call_later(
            self.settings.room_unload_grace_s, self._unload_later, room
        )

    def _unload_later(self, room: Room) -> None:
        self._unload_timers.pop(room.doc_id, None)
        if room.peers or self.rooms.get(room.doc_id) is not room:
            return
        del self.rooms[room.doc_id]
        self.ctx.spawn(room.stop(), name=f"unload-{room.doc_id}")
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

    # --- sockets -----------------------------------------------------------------------------

    def register(self, session: Session) -> None:
        self.sessions[session.conn_id] = session
        OPEN_WEBSOCKETS.labels(session.kind).inc()
        self.ctx.spawn(self._write_presence([session]), name="presence-add")

    def unregister(self, session: Session) -> None:
        if self.sessions.pop(session.conn_id, None) is None:
            return
        OPEN_WEBSOCKETS.labels(session.kind).dec()
        self.ctx.spawn(self._remove_presence(session), name="presence-remove")

    # --- revocations -------------------------------------------------------------------------

    async def _on_revocation(self, revocation: Revocation) -> None:
        if revocation.kind == "session":
            for session in self._sessions_of(revocation.user_id):
                self.ctx.spawn(self._recheck_token(session, revocation), name="ws-recheck-token")
            return
        for session in self._sessions_of(revocation.user_id):
            if _affected(session, revocation):
                self.ctx.spawn(self._recheck_access(session), name="ws-recheck-access")

    def _sessions_of(self, user_id: str) -> list[Session]:
        return [s for s in self.sessions.values() if user_id in (ANY_USER, s.user_id)]

    async def _recheck_token(self, session: Session, revocation: Revocation | None) -> None:
        if revocation is not None and session.identity.family_id in revocation.family_ids:
            session.close(4401, "session revoked")
            return
        try:
            await authenticate_token(self.ctx, session.identity.token)
        except Unauthorized:
            session.close(4401, "session revoked")
        except AppError as err:  # Postgres and Redis both down: keep it, re-check later
            log.warning("ws.recheck_token_failed", conn=session.conn_id, error=err.message)

    async def _recheck_access(self, session: Session) -> None:
        try:
            access = await policy.load_access(
                self.ctx, session.user_id, Resource.document(session.doc_id)
            )
        except AppError as err:
            log.warning("ws.recheck_access_failed", conn=session.conn_id, error=err.message)
            return
        session.set_access(access)

    async def _on_reconnect(self) -> None:
        """Signals sent while we were disconnected are lost: re-check everything, and make sure
        every room follows its log again."""
        for session in list(self.sessions.values()):
            self.ctx.spawn(self._recheck_token(session, None), name="ws-recheck-token")
            self.ctx.spawn(self._recheck_access(session), name="ws-recheck-access")
        for room in list(self.rooms.values()):
            self.ctx.spawn(room.resubscribe("nats_reconnect"), name=f"resubscribe-{room.doc_id}")

    # --- presence (Redis) --------------------------------------------------------------------

    async def _presence_heartbeat(self) -> None:
        interval = max(1.0, self.settings.presence_ttl_s / 3)
        while True:
            await asyncio.sleep(interval)
            await self._write_presence(list(self.sessions.values()))

    async def _write_presence(self, sessions: list[Session]) -> None:
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
            for s in sessions
            if not s.closed
        ]
        try:
            await self.presence.add(entries)
        except CacheUnavailable as err:  # Redis down: presence degrades, editing does not
            log.info("presence.write_failed", error=str(err))

    async def _remove_presence(self, session: Session) -> None:
        try:
            await self.presence.remove(session.doc_id, session.conn_id)
        except CacheUnavailable as err:
            log.info("presence.remove_failed", error=str(err))

    async def _forget_presence(self, sessions: list[Session]) -> None:
        await asyncio.gather(*(self._remove_presence(s) for s in sessions), return_exceptions=True)

    def describe(self) -> dict[str, Any]:
        """For ops/metrics: what this node holds."""
        return {
            "rooms": {
                doc_id: {"seq": room.last_applied_seq, "peers": len(room.peers)}
                for doc_id, room in self.rooms.items()
            },
            "sockets": len(self.sessions),
        }


def _affected(session: Session, revocation: Revocation) -> bool:
    """Whether a permission change may concern this socket (the re-check decides)."""
    if revocation.resource_type == "document" and revocation.resource_id:
        return session.doc_id == revocation.resource_id
    if revocation.workspace_id:
        return session.workspace_id == revocation.workspace_id
    return True
