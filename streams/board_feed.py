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
4403, a revoked session with 4401, a deleted board with 4404; a slow reader is closed with 4408.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import secrets
import time
import uuid
from typing import TYPE_CHECKING, Any, Literal, Protocol

import structlog
from nats.js.api import DeliverPolicy

from core.errors import AppError, NotFound, Unauthorized
from models.repo import board_events as events_repo
from models.repo import boards as boards_repo
from services import policy
from services.auth_guard import authenticate_token
from services.permissions_cache import ANY_USER
from services.policy import Action, Resource
from streams.board_presence import (
    BoardPresence,
    PresenceState,
    PresenceStore,
    presence_subject,
    safely,
)
from streams.jetstream import EVENTS_STREAM, board_event_subject
from streams.revocations import Revocation, subscribe_revocations
from streams.session import CLOSE_REASON_MAX_BYTES, Identity, TokenBucket

if TYPE_CHECKING:
    from server.context import AppContext

log = structlog.get_logger(__name__)

CLOSE_GOING_AWAY = 1001
CLOSE_TOO_BIG = 1009
CLOSE_INTERNAL = 1011
CLOSE_BAD_FRAMES = 4400
CLOSE_UNAUTHORIZED = 4401
CLOSE_FORBIDDEN = 4403
CLOSE_NOT_FOUND = 4404
CLOSE_SLOW_READER = 4408
CLOSE_FLOOD = 4429

# Frames waiting for a socket that does not read. A board event is a few KiB at most, so this is
# about a megabyte per connection; a client further behind reconnects with `?since=`.
OUTBOUND_QUEUE_FRAMES = 256
# Inbound frames are presence updates and pings: tiny. Anything bigger is not ours.
MAX_INBOUND_FRAME_BYTES = 4096
# Presence is a click on a card, not a stream: 10/s on average, bursts of 20.
INBOUND_RATE_PER_S = 10.0
INBOUND_BURST = 20
# Malformed or throttled frames are answered one by one up to this many, then the socket closes.
BAD_FRAMES_BEFORE_CLOSE = 20
ORDERED_CONSUMER_HEARTBEAT_S = 5.0
# Inbox marker: "fill from Postgres now" (queued so it runs in turn with live events).
RESYNC: dict[str, Any] = {"resync": True}


class Transport(Protocol):
    """What the feed needs from a socket (handlers/ws_boards.py adapts Tornado's)."""

    async def send_text(self, text: str) -> None: ...

    def close(self, code: int, reason: str) -> None: ...


class BoardConnection:
    """One socket on one board: bounded outbound queue, inbound limits, its resume position."""

    def __init__(
        self, feed: BoardFeed, board_id: str, identity: Identity, transport: Transport
    ) -> None:
        self.feed = feed
        self.board_id = board_id
        self.identity = identity
        self.user_id = identity.user_id
        self.transport = transport
        self.conn_id = secrets.token_hex(8)
        self.card_id: str | None = None
        self.last_seq = 0
        self.closed = False
        self._catching_up = True
        self._held: list[dict[str, Any]] = []
        self._outbox: asyncio.Queue[str] = asyncio.Queue(OUTBOUND_QUEUE_FRAMES)
        self._bucket = TokenBucket(INBOUND_RATE_PER_S, INBOUND_BURST)
        self._bad = 0
        self._writer: asyncio.Task[None] | None = None
        self._expiry: asyncio.TimerHandle | None = None

    def presence(self) -> BoardPresence:
        return BoardPresence(
            self.board_id,
            self.conn_id,
            self.user_id,
            self.identity.display_name,
            self.card_id,
            self.feed.ctx.node_id,
        )

    # --- lifecycle -----------------------------------------------------------------------------

    def start(self) -> None:
        loop = asyncio.get_running_loop()
        self._writer = loop.create_task(self._write_loop(), name=f"board-ws-{self.conn_id}")
        delay = max(0.0, self.identity.expires_at - time.time())
        self._expiry = loop.call_later(delay, self.close, CLOSE_UNAUTHORIZED, "token expired")

    def close(self, code: int, reason: str) -> None:
        """Close the socket with `code`; idempotent."""
        if self.closed:
            return
        reason = reason.encode()[:CLOSE_REASON_MAX_BYTES].decode(errors="ignore")
        self._cleanup()
        self.transport.close(code, reason)

    def transport_closed(self) -> None:
        """The socket is gone (either side closed it)."""
        if not self.closed:
            self._cleanup()

    def _cleanup(self) -> None:
        self.closed = True
        if self._expiry is not None:
            self._expiry.cancel()
        if self._writer is not None:
            self._writer.cancel()
        self.feed.leave(self)

    async def _write_loop(self) -> None:
        """One frame at a time: the next write waits until the previous one was flushed, so a
        client that stops reading fills the bounded queue (and is closed) instead of memory."""
        while True:
            text = await self._outbox.get()
            try:
                await self.transport.send_text(text)
            except Exception as err:  # the socket closed under us: on_close follows
                log.info("board_ws.write_failed", conn=self.conn_id, error=repr(err))
                return

    # --- outbound ------------------------------------------------------------------------------

    def send(self, frame: dict[str, Any]) -> None:
        if self.closed:
            return
        try:
            self._outbox.put_nowait(json.dumps(frame, separators=(",", ":"), default=str))
        except asyncio.QueueFull:
            log.warning("board_ws.slow_reader", conn=self.conn_id, board_id=self.board_id)
            self.close(CLOSE_SLOW_READER, "too slow: reconnect with ?since=<last seq>")

    def deliver(self, event: dict[str, Any]) -> None:
        """A board event in seq order; held while the socket replays, never sent twice."""
        if self._catching_up:
            self._held.append(event)
            return
        if event["seq"] <= self.last_seq:
            return
        self.last_seq = event["seq"]
        self.send({"type": "event", "event": event})

    def go_live(self) -> None:
        self._catching_up = False
        held, self._held = self._held, []
        for event in held:
            self.deliver(event)
        self.send({"type": "ready", "board_id": self.board_id, "seq": self.last_seq})

    # --- inbound -------------------------------------------------------------------------------

    def receive(self, message: str | bytes) -> None:
        """Validate one inbound frame; a bad one is answered, never raised."""
        if self.closed:
            return
        if not self._bucket.take(time.monotonic()):
            self._reject("rate_limited", "too many messages: this one was dropped", CLOSE_FLOOD)
            return
        if len(message) > MAX_INBOUND_FRAME_BYTES:
            self.close(CLOSE_TOO_BIG, f"frames are limited to {MAX_INBOUND_FRAME_BYTES} bytes")
            return
        if isinstance(message, bytes):
            self._reject("bad_frame", "binary frames are not part of the board protocol")
            return
        try:
            frame = json.loads(message)
        except json.JSONDecodeError:
            self._reject("bad_json", "frames must be JSON objects")
            return
        if not isinstance(frame, dict):
            self._reject("bad_frame", "frames must be JSON objects")
            return
        self._dispatch(frame)

    def _dispatch(self, frame: dict[str, Any]) -> None:
        kind = frame.get("type")
        if kind == "ping" and set(frame) == {"type"}:
            self.send({"type": "pong"})
        elif kind == "presence":
            card_id = _presence_card(frame)
            if card_id is False:
                self._reject("bad_frame", 'presence is {"type":"presence","card_id":<uuid>|null}')
                return
            self.card_id = card_id
            self.feed.announce(self, "viewing")
        else:
            self._reject("unknown_type", f"unknown frame type {str(kind)[:40]!r}")

    def _reject(self, code: str, message: str, close_code: int = CLOSE_BAD_FRAMES) -> None:
        self._bad += 1
        if self._bad > BAD_FRAMES_BEFORE_CLOSE:
            self.close(close_code, "too many bad or throttled frames")
            return
        self.send({"type": "error", "code": code, "message": message})


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
        if self._worker is not None:
            self._worker.cancel()
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
                conn.send({"type": "refetch", "reason": "gap", "seq": upto})

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
                conn.close(CLOSE_NOT_FOUND, "the board was deleted")
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
                conn.send(frame)


class BoardFeed:
    """A node component: the rooms, the sockets and the reactions to revocations."""

    def __init__(self, ctx: AppContext) -> None:
        self.ctx = ctx
        self.rooms: dict[str, BoardRoom] = {}
        self._starting: dict[str, asyncio.Task[BoardRoom]] = {}
        self.presence = PresenceStore(ctx.cache, ctx.settings.presence_ttl_s)
        self._heartbeat: asyncio.Task[None] | None = None
        self._stopping = False

    async def start(self) -> None:
        await subscribe_revocations(self.ctx.nats, self._on_revocation)
        self.ctx.nats.on_reconnect(self._on_reconnect)
        self._heartbeat = self.ctx.spawn(self._presence_heartbeat(), name="board-presence")

    async def stop(self) -> None:
        """Shutdown: every socket gets 1001 so its client resumes on another node."""
        self._stopping = True
        if self._heartbeat is not None:
            self._heartbeat.cancel()
        for conn in self.connections():
            conn.close(CLOSE_GOING_AWAY, "server shutting down, reconnect with ?since=")
        rooms, self.rooms = list(self.rooms.values()), {}
        await asyncio.gather(*(room.stop() for room in rooms), return_exceptions=True)

    def connections(self) -> list[BoardConnection]:
        return [c for room in self.rooms.values() for c in room.connections.values()]

    # --- joining and leaving -------------------------------------------------------------------

    async def join(self, conn: BoardConnection, since: int | None) -> None:
        """Attach a socket: replay what it missed since `since`, then live events."""
        if self._stopping:
            conn.close(CLOSE_GOING_AWAY, "server shutting down")
            return
        room = await self._room(conn.board_id)
        if conn.closed:  # the client left while the room started
            return
        room.connections[conn.conn_id] = conn
        conn.start()
        await self._replay(conn, room, since)
        if conn.closed:
            return
        conn.go_live()
        viewers = await safely(self.presence.current(conn.board_id), "list")
        conn.send(
            {
                "type": "presence",
                "state": "snapshot",
                "viewers": viewers or [],
                "stale": viewers is None,
            }
        )
        self.announce(conn, "viewing")

    async def _replay(self, conn: BoardConnection, room: BoardRoom, since: int | None) -> None:
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
            conn.send({"type": "refetch", "reason": reason, "seq": current})
            return
        conn.last_seq = since
        for event in await events_repo.events_after(self.ctx.db, conn.board_id, since, limit):
            if event["seq"] > conn.last_seq:
                conn.last_seq = event["seq"]
                conn.send({"type": "event", "event": event})

    def leave(self, conn: BoardConnection) -> None:
        room = self.rooms.get(conn.board_id)
        if room is None or room.connections.pop(conn.conn_id, None) is None:
            return
        self.ctx.spawn(self._forget(conn), name="board-presence-left")
        if not room.connections and not self._stopping:
            del self.rooms[conn.board_id]
            self.ctx.spawn(room.stop(), name=f"board-room-stop-{conn.board_id}")

    async def _room(self, board_id: str) -> BoardRoom:
        """The started room of a board; concurrent joiners share one start."""
        room = self.rooms.get(board_id)
        if room is not None:
            return room
        task = self._starting.get(board_id)
        if task is None:
            task = asyncio.get_running_loop().create_task(self._start_room(board_id))
            self._starting[board_id] = task
        return await asyncio.shield(task)

    async def _start_room(self, board_id: str) -> BoardRoom:
        try:
            room = BoardRoom(self, board_id)
            await room.start()
            self.rooms[board_id] = room
            return room
        finally:
            self._starting.pop(board_id, None)

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

    async def _forget(self, conn: BoardConnection) -> None:
        await safely(self.presence.remove(conn.board_id, conn.conn_id), "remove")
        await self._announce(conn, "left")

    async def _presence_heartbeat(self) -> None:
        interval = max(1.0, self.ctx.settings.presence_ttl_s / 3)
        while True:
            await asyncio.sleep(interval)
            entries = [c.presence() for c in self.connections() if not c.closed]
            await safely(self.presence.put(entries), "heartbeat")

    # --- access re-checks ----------------------------------------------------------------------

    async def recheck(self, conns: list[BoardConnection]) -> None:
        """Close the sockets whose user may no longer view their board."""
        for conn in conns:
            try:
                access = await policy.load_access(
                    self.ctx, conn.user_id, Resource.board(conn.board_id)
                )
            except AppError as err:  # both stores down: keep it, the next signal re-checks
                log.warning("board_ws.recheck_failed", conn=conn.conn_id, error=err.message)
                continue
            if access is None:
                conn.close(CLOSE_NOT_FOUND, "the board no longer exists")
            elif access.workspace_role is None or not access.allows(Action.BOARD_VIEW):
                conn.close(CLOSE_FORBIDDEN, "access to this board was revoked")

    async def _recheck_session(self, conn: BoardConnection, revocation: Revocation | None) -> None:
        if revocation is not None and conn.identity.family_id in revocation.family_ids:
            conn.close(CLOSE_UNAUTHORIZED, "session revoked")
            return
        try:
            await authenticate_token(self.ctx, conn.identity.token)
        except Unauthorized:
            conn.close(CLOSE_UNAUTHORIZED, "session revoked")
        except AppError as err:
            log.warning("board_ws.recheck_token_failed", conn=conn.conn_id, error=err.message)

    async def _on_revocation(self, revocation: Revocation) -> None:
        mine = [c for c in self.connections() if revocation.user_id in (ANY_USER, c.user_id)]
        if revocation.kind == "session":
            for conn in mine:
                self.ctx.spawn(self._recheck_session(conn, revocation), name="board-ws-session")
            return
        affected = [c for c in mine if self._affected(c, revocation)]
        if affected:
            self.ctx.spawn(self.recheck(affected), name="board-ws-recheck")

    def _affected(self, conn: BoardConnection, revocation: Revocation) -> bool:
        if revocation.resource_type is not None and revocation.resource_id is not None:
            return revocation.resource_type == "board" and revocation.resource_id == conn.board_id
        room = self.rooms.get(conn.board_id)
        return revocation.workspace_id is None or (
            room is not None and room.workspace_id == revocation.workspace_id
        )

    async def _on_reconnect(self) -> None:
        """Signals and events may have been missed while NATS was away: re-check every socket
        and fill every room from Postgres."""
        conns = self.connections()
        for conn in conns:
            self.ctx.spawn(self._recheck_session(conn, None), name="board-ws-session")
        self.ctx.spawn(self.recheck(conns), name="board-ws-recheck")
        for room in list(self.rooms.values()):
            room.request_resync()
