"""Live board events and presence for WebSockets (`/ws/boards/<id>`), without Tornado.

Per node, one `BoardRoom` per board that has sockets here: ONE ordered JetStream consumer on
`collab.board.<id>.event` and one core-NATS presence subscription, fanned out to every local socket.

Ordering and resume (the board `seq` is gapless per board, services/board_changes.py):
* A room delivers events strictly in `seq` order without holes: a duplicate (seq already passed) is
  dropped; a gap (an event was not published yet when a later one arrived, or the consumer lost
  messages) is filled from Postgres before the later event goes out.
* `?since=<seq>` replays from Postgres (`board_events`), not from JetStream: Postgres holds every
  committed event (also ones whose publish is still pending after a NATS outage), is indexed by
  (board, seq) and is the same for every node, whereas JetStream only knows stream sequences and
  would need a scan of the subject to find a board seq. While a socket replays, live events are
  held for it and released after the replay, deduplicated by seq.
* Too far behind (older than what is retained, or more than `board_replay_max_events` missed), or
  ahead of the board: the socket gets `{"type":"refetch"}` and continues live from the current seq;
  the client reloads the board (`GET` returns `event_seq`) and ignores events at or below it.

Frames out: `{"type":"ready",...}` once live, `{"type":"event","event":{...}}`,
`{"type":"presence",...}`, `{"type":"refetch","reason":...}`, `{"type":"error",...}`.
Frames in: `{"type":"presence","card_id":<uuid>|null}` and `{"type":"ping"}`.

Access: every socket is re-checked when a revocation signal concerns it, when the board's own
events change grants or make it private, and after a NATS reconnect; lost access closes it with
4403, a revoked session with 4401, a deleted board with 4404; a slow reader is closed with 1008.

This is the board kind of the socket hub (live/hub.py): limits, the frame worker, the
slow-reader rule, token expiry, revocation re-checks, the presence heartbeat and shutdown are the
hub's; this module holds the board's frames, rooms, replay and presence.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import uuid
from typing import TYPE_CHECKING, Any, Literal

import structlog
from nats.js.api import DeliverPolicy

from bus.jetstream import EVENTS_STREAM, board_event_subject
from bus.revocations import Revocation
from core.errors import AppError, CloseCode, NotFound
from live.board_presence import (
    BoardPresence,
    PresenceState,
    PresenceStore,
    presence_subject,
    safely,
)
from live.hub import Hub, Identity, JsonConnection, RoomRegistry, SocketLimits, Transport
from models.repo import board_events as events_repo
from models.repo import boards as boards_repo
from services.policy import Access, Action, Resource

if TYPE_CHECKING:
    from server.settings import Settings
    from services.deps import Deps

log = structlog.get_logger(__name__)

# Unsent bytes for a socket that does not read. A board event is a few KiB at most, so this is a
# few hundred events; a client further behind reconnects with `?since=`.
MAX_PENDING_BYTES = 1024 * 1024
# Inbound frames are presence updates and pings: tiny. Anything bigger is not ours.
MAX_INBOUND_FRAME_BYTES = 4096
# Presence is a click on a card, not a stream: 10/s on average, bursts of 20.
INBOUND_RATE_PER_S = 10.0
INBOUND_BURST = 20
# Malformed frames are answered one by one up to this many, then the socket closes (4400).
# Frames above the rate wait (the hub's back-pressure); none is dropped.
BAD_FRAMES_BEFORE_CLOSE = 20
ORDERED_CONSUMER_HEARTBEAT_S = 5.0
# Inbox marker: "fill from Postgres now" (queued so it runs in turn with live events).
RESYNC: dict[str, Any] = {"resync": True}
# Inbox marker: "stop now" (wakes a worker whose cancellation was lost, see `BoardRoom.stop`).
STOP: dict[str, Any] = {"stop": True}
# How long a stopping room waits for its worker to finish the event in hand.
WORKER_STOP_TIMEOUT_S = 5.0


def board_limits(settings: Settings) -> SocketLimits:
    return SocketLimits(
        rate_per_s=INBOUND_RATE_PER_S,
        burst=INBOUND_BURST,
        bad_frames_before_close=BAD_FRAMES_BEFORE_CLOSE,
        queue_max_msgs=settings.ws_queue_max_msgs,
        queue_max_bytes=settings.ws_queue_max_bytes,
        max_pending_bytes=MAX_PENDING_BYTES,
        max_frame_bytes=MAX_INBOUND_FRAME_BYTES,
    )


class BoardConnection(JsonConnection):
    """One socket on one board: its resume position and the card it has open."""

    kind = "board"
    protocol_name = "board"

    def __init__(
        self,
        feed: BoardFeed,
        board_id: str,
        identity: Identity,
        transport: Transport,
        *,
        workspace_id: str = "",
        since: int | None = None,
    ) -> None:
        super().__init__(
            conn_id=feed.new_conn_id(),
            identity=identity,
            workspace_id=workspace_id,
            transport=transport,
            limits=board_limits(feed.settings),
        )
        self.feed = feed
        self.board_id = board_id
        self.since = since
        self.room: BoardRoom | None = None  # set once joined
        self.card_id: str | None = None
        self.last_seq = 0
        self._catching_up = True
        self._held: list[dict[str, Any]] = []

    def presence(self) -> BoardPresence:
        return BoardPresence(
            self.board_id,
            self.conn_id,
            self.user_id,
            self.identity.display_name,
            self.card_id,
            self.feed.ctx.node_id,
        )

    # --- the hub's hooks -----------------------------------------------------------------------

    async def open(self) -> None:
        """Join the room: replay what the socket missed since `since`, then go live."""
        room = await self.feed.registry.acquire(self.board_id)
        if self.closed:  # the client left while the room started
            return
        self.room = room
        room.connections[self.conn_id] = self
        await self.feed.replay(self, room, self.since)
        if self.closed:
            return
        self.go_live()
        viewers = await safely(self.feed.presence.current(self.board_id), "list")
        self.send_json(
            {
                "type": "presence",
                "state": "snapshot",
                "viewers": viewers or [],
                "stale": viewers is None,
            }
        )
        self.feed.announce(self, "viewing")

    def leave(self) -> None:
        room = self.room
        if room is None or room.connections.pop(self.conn_id, None) is None:
            return
        if not room.connections:
            self.feed.registry.release(room)

    def resource(self) -> Resource:
        return Resource.board(self.board_id)

    def affected_by(self, revocation: Revocation) -> bool:
        if revocation.resource_type is not None and revocation.resource_id is not None:
            return revocation.resource_type == "board" and revocation.resource_id == self.board_id
        return revocation.workspace_id is None or self.workspace_id == revocation.workspace_id

    def apply_access(self, access: Access | None) -> None:
        if access is None:
            self.close(CloseCode.NOT_FOUND, "the board no longer exists")
        elif access.workspace_role is None or not access.allows(Action.BOARD_VIEW):
            self.close(CloseCode.FORBIDDEN, "access to this board was revoked")

    # --- outbound ------------------------------------------------------------------------------

    def deliver(self, event: dict[str, Any]) -> None:
        """A board event in seq order; held while the socket replays, never sent twice."""
        if self._catching_up:
            self._held.append(event)
            return
        if event["seq"] <= self.last_seq:
            return
        self.last_seq = event["seq"]
        self.send_json({"type": "event", "event": event})

    def go_live(self) -> None:
        self._catching_up = False
        held, self._held = self._held, []
        for event in held:
            self.deliver(event)
        self.send_json({"type": "ready", "board_id": self.board_id, "seq": self.last_seq})

    # --- inbound -------------------------------------------------------------------------------

    async def on_frame(self, message: str | bytes) -> None:
        """Validate one inbound frame; a bad one is answered, never raised."""
        frame = self.json_frame(message)
        if frame is not None:
            self._dispatch(frame)

    def _dispatch(self, frame: dict[str, Any]) -> None:
        kind = frame.get("type")
        if kind == "ping" and set(frame) == {"type"}:
            self.send_json({"type": "pong"})
        elif kind == "presence":
            card_id = _presence_card(frame)
            if card_id is False:
                self.reject("bad_frame", 'presence is {"type":"presence","card_id":<uuid>|null}')
                return
            self.card_id = card_id
            self.feed.announce(self, "viewing")
        else:
            self.reject("unknown_type", f"unknown frame type {str(kind)[:40]!r}")


def _presence_card(frame: dict[str, Any]) -> str | Literal[False] | None:
    """The card id of a presence frame, None for "no card open", False when malformed."""
    if set(frame) != {"type", "card_id"}:
        return False
    value = frame["card_id"]
    if value is None:
        return None
    try:
        return str(uuid.UUID(str(value)))
    except ValueError:
        return False


class BoardRoom:
    """The node's view of one board: its subscriptions, its sockets, the last seq fanned out."""

    def __init__(self, feed: BoardFeed, board_id: str) -> None:
        self.feed = feed
        self.ctx = feed.ctx
        self.board_id = board_id
        self.workspace_id = ""
        self.connections: dict[str, BoardConnection] = {}
        self.last_seq = 0
        # Unbounded on purpose: it is fed by the NATS callback, which must never block, and
        # drained by a worker that only does in-memory fan-out (plus a rare gap fill).
        self._inbox: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        self._subs: list[Any] = []
        self._worker: asyncio.Task[None] | None = None

    @property
    def key(self) -> str:
        return self.board_id

    def has_members(self) -> bool:
        return bool(self.connections)

    async def start(self) -> None:
        """Subscribe first, then read the current seq: nothing committed in between is lost
        (it either arrives live or is at or below the seq read)."""
        js = self.ctx.nats.jetstream
        self._subs.append(
            await js.subscribe(
                board_event_subject(self.board_id),
                stream=EVENTS_STREAM,
                cb=self._on_event_msg,
                ordered_consumer=True,
                deliver_policy=DeliverPolicy.NEW,
                idle_heartbeat=ORDERED_CONSUMER_HEARTBEAT_S,
            )
        )
        self._subs.append(
            await self.ctx.nats.nc.subscribe(
                presence_subject(self.board_id), cb=self._on_presence_msg
            )
        )
        board = await boards_repo.get_board(self.ctx.db, self.board_id)
        if board is None:
            await self.stop()
            raise NotFound("board not found")
        self.workspace_id = str(board["workspace_id"])
        self.last_seq = board["event_seq"]
        self._worker = asyncio.get_running_loop().create_task(
            self._process(), name=f"board-room-{self.board_id}"
        )

    async def stop(self) -> None:
        """Stop the worker, then the subscriptions. A cancellation can be lost (Python 3.11's
        `wait_for` swallows one that meets a result), so the STOP marker ends the loop too, and
        the worker is waited for only so long."""
        if self._worker is not None:
            self._inbox.put_nowait(STOP)
            self._worker.cancel()
            await asyncio.wait([self._worker], timeout=WORKER_STOP_TIMEOUT_S)
        for sub in self._subs:
            with contextlib.suppress(Exception):
                await sub.unsubscribe()
        self._subs = []

    # --- events --------------------------------------------------------------------------------

    async def _on_event_msg(self, msg: Any) -> None:
        try:
            event = json.loads(msg.data)
            int(event["seq"])
        except (ValueError, KeyError, TypeError) as err:
            log.error("board_room.poison_event", board_id=self.board_id, error=repr(err))
            return
        self._inbox.put_nowait(event)

    def request_resync(self) -> None:
        """Fill from Postgres soon, in turn with live events (after a NATS reconnect)."""
        self._inbox.put_nowait(RESYNC)

    async def _process(self) -> None:
        """The one place events are applied, one at a time, so `last_seq` only moves forward."""
        while True:
            item = await self._inbox.get()
            if item is STOP:
                return
            try:
                if item is RESYNC:
                    await self.catch_up_to(None)
                else:
                    await self.apply(item)
            except Exception as err:
                log.exception("board_room.apply_failed", board_id=self.board_id, error=repr(err))

    async def apply(self, event: dict[str, Any]) -> None:
        """Fan out `event` after any events missing before it (from Postgres)."""
        seq = event["seq"]
        if seq <= self.last_seq:
            return
        if seq > self.last_seq + 1:
            await self.catch_up_to(seq - 1)
        self._fan_out(event)
        await self._react(event)

    async def catch_up_to(self, upto: int | None = None) -> None:
        """Fan out events after `last_seq` (up to `upto`) from Postgres."""
        missing = None if upto is None else upto - self.last_seq
        try:
            events = await events_repo.events_after(
                self.ctx.db,
                self.board_id,
                self.last_seq,
                missing or self.ctx.settings.board_replay_max_events,
            )
        except AppError as err:
            log.warning("board_room.gap_unfilled", board_id=self.board_id, error=err.message)
            events = []
        for event in events:
            self._fan_out(event)
            await self._react(event)
        if upto is not None and self.last_seq < upto:
            # Cannot be filled (pruned, or Postgres down): clients must reload.
            self.last_seq = upto
            for conn in list(self.connections.values()):
                conn.send_json({"type": "refetch", "reason": "gap", "seq": upto})

    def _fan_out(self, event: dict[str, Any]) -> None:
        if event["seq"] <= self.last_seq:
            return
        self.last_seq = event["seq"]
        for conn in list(self.connections.values()):
            conn.deliver(event)

    async def _react(self, event: dict[str, Any]) -> None:
        """Events that change who may see the board re-check the sockets concerned."""
        kind, entity = event["type"], event["entity"]
        if kind == "board.deleted":
            for conn in list(self.connections.values()):
                conn.close(CloseCode.NOT_FOUND, "the board was deleted")
        elif kind in ("member.granted", "member.revoked"):
            await self.feed.recheck(
                [c for c in self.connections.values() if c.user_id == entity["user_id"]]
            )
        elif kind == "board.updated" and entity.get("is_private"):
            await self.feed.recheck(list(self.connections.values()))

    # --- presence ------------------------------------------------------------------------------

    async def _on_presence_msg(self, msg: Any) -> None:
        try:
            frame = json.loads(msg.data)
            origin = frame["conn_id"]
        except (ValueError, KeyError, TypeError):
            return
        for conn in list(self.connections.values()):
            if conn.conn_id != origin:
                conn.send_json(frame)


class BoardFeed(Hub[BoardConnection]):
    """The board kind of the socket hub: board rooms, replay, presence on NATS and Redis."""

    going_away_reason = "server shutting down, reconnect with ?since="

    def __init__(self, ctx: Deps) -> None:
        super().__init__(ctx)
        self.presence = PresenceStore(ctx.cache, ctx.settings.presence_ttl_s)
        # No grace: a board room is a subscription and a seq, cheap to start again.
        self.registry: RoomRegistry[BoardRoom] = RoomRegistry(self._start_room, grace_s=0.0)

    @property
    def rooms(self) -> dict[str, BoardRoom]:
        return self.registry.rooms

    async def _start_room(self, board_id: str) -> BoardRoom:
        room = BoardRoom(self, board_id)
        await room.start()
        return room

    async def stop_rooms(self) -> None:
        await self.registry.stop()

    def resync_rooms(self) -> None:
        """Events may have been missed while NATS was away: fill every room from Postgres."""
        for room in list(self.rooms.values()):
            room.request_resync()

    async def replay(self, conn: BoardConnection, room: BoardRoom, since: int | None) -> None:
        if since is None:
            conn.last_seq = room.last_seq
            return
        oldest, current = await events_repo.retained_range(self.ctx.db, conn.board_id)
        limit = self.ctx.settings.board_replay_max_events
        reason = None
        if since > current:
            reason = "ahead_of_board"
        elif since < current and (oldest is None or since + 1 < oldest or current - since > limit):
            reason = "too_far_behind"
        if reason is not None:
            conn.last_seq = room.last_seq
            conn.send_json({"type": "refetch", "reason": reason, "seq": current})
            return
        conn.last_seq = since
        for event in await events_repo.events_after(self.ctx.db, conn.board_id, since, limit):
            if event["seq"] > conn.last_seq:
                conn.last_seq = event["seq"]
                conn.send_json({"type": "event", "event": event})

    async def recheck(self, conns: list[BoardConnection]) -> None:
        """Close the sockets whose user may no longer view their board."""
        for conn in conns:
            await self.recheck_access(conn)

    # --- presence ------------------------------------------------------------------------------

    def announce(self, conn: BoardConnection, state: PresenceState) -> None:
        if state == "viewing" and conn.closed:
            return
        self.ctx.spawn(self._announce(conn, state), name="board-presence")

    async def _announce(self, conn: BoardConnection, state: PresenceState) -> None:
        entry = conn.presence()
        if state == "viewing":
            await safely(self.presence.put([entry]), "put")
        try:
            await self.ctx.nats.nc.publish(
                presence_subject(conn.board_id), json.dumps(entry.message(state)).encode()
            )
        except Exception as err:  # core NATS presence is best effort by design
            log.info("board_presence.publish_failed", error=repr(err))

    async def forget(self, conn: BoardConnection) -> None:
        if conn.room is None:  # never joined, never announced
            return
        await safely(self.presence.remove(conn.board_id, conn.conn_id), "remove")
        await self._announce(conn, "left")

    async def renew_presence(self, conns: list[BoardConnection]) -> None:
        entries = [c.presence() for c in conns if c.room is not None]
        await safely(self.presence.put(entries), "heartbeat")
