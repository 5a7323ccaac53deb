"""The socket hub every WebSocket kind shares (documents, boards, and whatever comes next).

Two classes hold everything that is the same for every kind of socket, so a new kind is one
`Connection` subclass (its frames, its room, its access rule) and one `Hub` subclass (its rooms and
presence), like Hocuspocus' one `ClientConnection` per socket with typed hooks:

* `Connection` is one socket, without Tornado: token expiry, the inbound limits (frame size,
  malformed-frame budget, and a bounded queue with back-pressure paced by a token bucket), one
  worker that handles the frames in arrival order under a catch-all (a task only while there are
  frames to handle), and the ONE outbound rule:
  a frame is written at once,
  and a socket whose unsent bytes pass its kind's `max_pending_bytes` is a slow reader and is closed
  with 1008 (it reconnects and resyncs; memory per socket stays bounded, R18).
* `Hub` is a node component per socket kind: the open sockets, revocation signals and NATS
  reconnects re-checking them (session → 4401, access → the kind's rule), the presence heartbeat,
  and shutdown (1001 to every socket, then a bounded drain).
* `JsonConnection` is the part the JSON-speaking kinds (boards, the inbox) share: JSON frames out,
  error frames, and turning an inbound frame into an object or a `reject`.
* `RoomRegistry` loads rooms on demand, shares one load between concurrent joiners and unloads a
  room whose last socket left after a grace period.

Closing goes through one funnel, `close_for(err)`, the socket twin of the HTTP error funnel in
handlers/base.py: a domain error closes with its `CloseCode` and its message as the reason.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import random
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar, Generic, Protocol, TypeVar

import structlog

from bus.revocations import Revocation, subscribe_revocations
from core.errors import AppError, CloseCode, Unauthorized
from live.expiry import ExpiryClock
from server.metrics import OPEN_WEBSOCKETS
from services import policy
from services.auth_guard import authenticate_token
from services.permissions_cache import ANY_USER
from services.policy import Access, Resource

if TYPE_CHECKING:
    from services.deps import Deps

log = structlog.get_logger(__name__)

# RFC 6455 §5.5: a control frame carries at most 125 bytes, two of which are the close code.
CLOSE_REASON_MAX_BYTES = 123
# SIGTERM: how long sockets get to finish the message they are processing (a document publish
# retries for up to doc_log.PUBLISH_DEADLINE_S) before the rooms stop.
DRAIN_TIMEOUT_S = 8.0
# Then the rooms get this long to unsubscribe and stop their workers.
ROOM_STOP_TIMEOUT_S = 10.0
# A connection's life: started by the hub, then left its room once (after it closed).
_NOT_STARTED, _STARTED, _LEFT = 0, 1, 2


def close_delays(count: int, spread_s: float) -> list[float]:
    """When to close each of `count` sockets at shutdown: uniformly over `spread_s` seconds.

    y-websocket retries ~100 ms after a close with no jitter of its own, so closing every socket
    at once sends a node's whole audience to the other nodes in the same instant (measured: all
    within 0.2 s, tests/test_fault_rolling_restart.py); spreading the closes spreads the herd.
    """
    if spread_s <= 0:
        return [0.0] * count
    return [random.uniform(0, spread_s) for _ in range(count)]


def close_reason(text: str) -> str:
    """`text` cut to what fits a close frame, never in the middle of a UTF-8 sequence."""
    return text.encode()[:CLOSE_REASON_MAX_BYTES].decode(errors="ignore")


def close_for(err: BaseException) -> tuple[CloseCode, str]:
    """The socket error funnel: a domain error closes with its code and its (human) message;
    anything else is our bug, closed with 1011 and a reason that reveals nothing."""
    if isinstance(err, AppError):
        return err.ws_close_code, close_reason(err.message)
    return CloseCode.INTERNAL_ERROR, CloseCode.INTERNAL_ERROR.reason


@dataclass(frozen=True, slots=True)
class Identity:
    """The authenticated user behind a socket; `token` is kept to re-check it on revocations."""

    user_id: str
    display_name: str
    family_id: str
    token: str
    expires_at: int


class TokenBucket:
    """`rate` units per second on average, bursts up to `burst`."""

    __slots__ = ("burst", "rate", "tokens", "updated")

    def __init__(self, rate: float, burst: int) -> None:
        self.rate = rate
        self.burst = float(burst)
        self.tokens = float(burst)
        self.updated = time.monotonic()

    def take(self, now: float) -> bool:
        self.tokens = min(self.burst, self.tokens + (now - self.updated) * self.rate)
        self.updated = now
        if self.tokens < 1:
            return False
        self.tokens -= 1
        return True

    def wait_s(self, now: float) -> float:
        """Seconds until `take` succeeds (0: now)."""
        tokens = min(self.burst, self.tokens + (now - self.updated) * self.rate)
        return 0.0 if tokens >= 1 else (1 - tokens) / self.rate


@dataclass(frozen=True, slots=True)
class SocketLimits:
    """The per-socket limits of one socket kind (settings or the kind's named constants)."""

    rate_per_s: float  # inbound units (a frame, or a run of merged updates) handled per second
    burst: int  # ... and in a burst; above it the worker waits, so the queue fills up
    bad_frames_before_close: int  # malformed frames answered before the socket is closed with 4400
    queue_max_msgs: int  # inbound frames waiting for the worker; when full, reading pauses
    queue_max_bytes: int
    max_pending_bytes: int  # unsent outbound bytes before the socket is a slow reader (R18)
    max_frame_bytes: int | None = None  # checked here when tighter than Tornado's own limit


class Transport(Protocol):
    """What a connection needs from its socket (the Tornado adapter is handlers/ws_auth.py)."""

    def send(self, frame: bytes | str) -> None:
        """Queue one frame for writing; never blocks."""

    def unsent_bytes(self) -> int:
        """Bytes queued on this socket that the kernel has not taken yet."""

    def close(self, code: int, reason: str) -> None: ...


class Connection:
    """One socket of any kind. Subclasses provide `open`, `on_frame`, `error`, `leave`,
    `apply_access`, `resource` and `affected_by`; `receive` and `send` are the same for all."""

    kind: ClassVar[str] = "abstract"
    # One instance per open socket: slots instead of a __dict__ each (issue 15, memory per idle
    # connection; bench/FINDINGS.md). Subclasses that add attributes declare theirs.
    __slots__ = (
        "_bad",
        "_bucket",
        "_expiry",
        "_left_waiter",
        "_queue",
        "_queued_bytes",
        "_room_in_queue",
        "_stage",
        "_task",
        "closed",
        "conn_id",
        "connected_at",
        "identity",
        "limits",
        "transport",
        "user_id",
        "workspace_id",
    )

    def __init__(
        self,
        *,
        conn_id: str,
        identity: Identity,
        workspace_id: str,
        transport: Transport,
        limits: SocketLimits,
    ) -> None:
        self.conn_id = conn_id
        self.identity = identity
        self.user_id = identity.user_id
        self.workspace_id = workspace_id
        self.transport = transport
        self.limits = limits
        self.closed = False
        self.connected_at = time.time()
        # A list, not a deque: an empty deque keeps a 64-slot block (~0.7 KB per idle socket);
        # the queue is short (at most `queue_max_msgs`), so popping its front is cheap.
        self._queue: list[bytes | str] = []
        self._queued_bytes = 0
        # The worker runs only while there is work (see `_run`): None while the socket is idle.
        self._task: asyncio.Task[None] | None = None
        self._stage = _NOT_STARTED
        self._left_waiter: asyncio.Future[None] | None = None  # made by `wait_closed` if needed
        self._bucket = TokenBucket(limits.rate_per_s, limits.burst)
        self._room_in_queue: asyncio.Future[None] | None = None
        self._bad = 0
        self._expiry: ExpiryClock | asyncio.TimerHandle | None = None

    # --- lifecycle ---------------------------------------------------------------------------

    def start(self, expiries: ExpiryClock | None = None) -> asyncio.Task[None]:
        """Arm the token expiry -- on the hub's clock (live/expiry.py), or a timer of its own
        without one -- and start the worker (open, then frames in arrival order)."""
        if expiries is not None:
            expiries.add(self, self.identity.expires_at)
            self._expiry = expiries
        else:
            delay = max(0.0, self.identity.expires_at - time.time())
            self._expiry = asyncio.get_running_loop().call_later(delay, self.expire)
        self._stage = _STARTED
        task = self._task = asyncio.create_task(self._run(opening=True), name=f"ws-{self.conn_id}")
        return task

    def expire(self) -> None:
        """The token expired: 4401, the client refreshes it and reconnects."""
        self.close(CloseCode.UNAUTHORIZED, "token expired")

    def close(self, code: CloseCode, reason: str | None = None) -> None:
        """Close the socket with `code` (and its default reason unless given); idempotent."""
        if self.closed:
            return
        self._mark_closed()
        self.transport.close(code, close_reason(code.reason if reason is None else reason))

    def transport_closed(self) -> None:
        """The socket is gone (either side closed it)."""
        self._mark_closed()

    def _mark_closed(self) -> None:
        self.closed = True
        self._wake()
        self._resume_reading()
        expiry, self._expiry = self._expiry, None
        if isinstance(expiry, ExpiryClock):
            expiry.discard(self, self.identity.expires_at)
        elif expiry is not None:
            expiry.cancel()

    async def wait_closed(self) -> None:
        """Until the socket has closed and its worker has left the room."""
        while self._stage == _STARTED:
            task = self._task
            if task is not None:
                with contextlib.suppress(asyncio.CancelledError):
                    await task
                continue
            waiter = self._left_waiter
            if waiter is None or waiter.done():
                waiter = self._left_waiter = asyncio.get_running_loop().create_future()
            await waiter

    async def _run(self, opening: bool = False) -> None:
        """The worker: `open` (its first run), then the queued frames in arrival order. It ends
        when the queue is empty and `_wake` runs it again when a frame arrives, or when the
        socket closes (to leave the room): an idle socket holds no task, coroutine or future
        (~1 KB each, issue 15, memory per idle connection). Between the empty queue and
        `_task = None` nothing awaits, so a frame cannot arrive unseen."""
        idle = False
        try:
            if opening:
                await self.open()
            await self._process()
            idle = not self.closed
        except Exception as err:
            if not isinstance(err, AppError):
                log.exception("ws.session_failed", conn=self.conn_id, error=repr(err))
            self.close(*close_for(err))
        finally:
            self._task = None
            if not idle:  # closed, failed or cancelled
                self._leave_once()

    def _leave_once(self) -> None:
        if self._stage != _STARTED:
            return
        self._stage = _LEFT
        waiter, self._left_waiter = self._left_waiter, None
        try:
            self.leave()
        finally:
            if waiter is not None and not waiter.done():
                waiter.set_result(None)

    async def _process(self) -> None:
        while self._queue and not self.closed:
            await self._pace()
            if self.closed:
                return
            await self.handle(self.next_frame())

    async def _pace(self) -> None:
        """The token bucket: wait until this socket may have its next unit handled. Waiting is
        what throttles: the queue fills, `receive` tells the transport to stop reading, and TCP
        pushes back on the client -- nothing it sent is dropped (issue 17 item 12)."""
        wait_s = self._bucket.wait_s(time.monotonic())
        if wait_s > 0:
            await asyncio.sleep(wait_s)
        self._bucket.take(time.monotonic())

    def next_frame(self) -> bytes | str:
        """The next unit of work; a kind may override it to merge a run of queued frames."""
        return self.pop_queued()

    def peek_queued(self) -> bytes | str | None:
        """The frame `pop_queued` would return, without taking it."""
        return self._queue[0] if self._queue else None

    def requeue_front(self, frames: list[bytes | str]) -> None:
        """Put frames taken with `pop_queued` back at the front, in their order."""
        self._queue[:0] = frames
        self._queued_bytes += sum(len(frame) for frame in frames)

    def pop_queued(self) -> bytes | str:
        """Take the oldest queued frame; reading resumes once the queue has room again."""
        message = self._queue.pop(0)
        self._queued_bytes -= len(message)
        if not self._queue_full():
            self._resume_reading()
        return message

    async def handle(self, message: bytes | str) -> None:
        """Process one inbound frame; never raises (a bad one costs its sender an error)."""
        try:
            await self.on_frame(message)
        except (asyncio.CancelledError, KeyboardInterrupt, SystemExit):
            raise
        except BaseException as err:  # pyo3 PanicException is a BaseException (DESIGN.md §7)
            log.error("ws.message_failed", conn=self.conn_id, error=repr(err), exc_info=True)
            self.reject("internal_error", "the message could not be processed")

    # --- inbound (called from the transport's on_message) ------------------------------------

    def receive(self, message: bytes | str) -> Awaitable[None] | None:
        """Queue one inbound frame for the worker (or close: frame size).

        Returns an awaitable while the queue is full (S7: a room still loading; S5: a sender
        faster than its token bucket): the transport reads no further frame until it resolves,
        so the kernel's buffers fill and TCP slows the client down. Memory per socket stays
        bounded by the queue limits, and no frame the client sent is ever dropped -- a client
        cannot tell a throttled update from a delivered one, so dropping one would silently fork
        the document (issue 17 item 12).
        """
        if self.closed:
            return None
        limits = self.limits
        size = len(message)
        if limits.max_frame_bytes is not None and size > limits.max_frame_bytes:
            self.close(CloseCode.TOO_BIG, f"frames are limited to {limits.max_frame_bytes} bytes")
            return None
        if self._task is None and self.settles_at_once(message) and self._take_token():
            return None
        self._queue.append(message)
        self._queued_bytes += size
        self._wake()
        if not self._queue_full():
            return None
        if self._room_in_queue is None:
            self._room_in_queue = asyncio.get_running_loop().create_future()
        return self._room_in_queue

    def settles_at_once(self, message: bytes | str) -> bool:
        """Whether `message` needs no work at all (a kind overrides this): then, while the worker
        is idle -- nothing queued before it, nothing in progress -- it is settled where it is read
        instead of queued for the worker: the wake-up costs more than the frame (issue 15)."""
        return False

    def _take_token(self) -> bool:
        """A unit of the token bucket now, if there is one (a settled frame still counts against
        the socket's rate: a flood of them is paced like any other frame)."""
        return self._bucket.take(time.monotonic())

    def _wake(self) -> None:
        """Run the worker if it is not running: a frame arrived, or the socket closed (then it
        leaves the room)."""
        if self._task is None and self._stage == _STARTED:
            try:
                loop = asyncio.get_running_loop()
            except RuntimeError:  # a close seen while the process tears its loop down
                return
            self._task = loop.create_task(self._run(), name=f"ws-{self.conn_id}")

    @property
    def queued_frames(self) -> int:
        """Inbound frames waiting for the worker."""
        return len(self._queue)

    def _queue_full(self) -> bool:
        limits = self.limits
        return (
            len(self._queue) >= limits.queue_max_msgs
            or self._queued_bytes >= limits.queue_max_bytes
        )

    def _resume_reading(self) -> None:
        waiting, self._room_in_queue = self._room_in_queue, None
        if waiting is not None and not waiting.done():
            waiting.set_result(None)

    def reject(self, code: str, message: str, msg_id: str | None = None) -> None:
        """Answer a malformed frame; too many of them end the connection."""
        self._bad += 1
        if self._bad > self.limits.bad_frames_before_close:
            self.close(CloseCode.BAD_REQUEST, "too many malformed messages")
            return
        self.error(code, message, msg_id)

    # --- outbound ----------------------------------------------------------------------------

    def send(self, frame: bytes | str) -> None:
        """Write one frame now; a socket that does not read what it is sent is closed (R18)."""
        if self.closed:
            return
        transport = self.transport
        unsent = transport.unsent_bytes()
        if unsent + len(frame) > self.limits.max_pending_bytes:
            log.warning("ws.slow_reader", conn=self.conn_id, kind=self.kind, pending=unsent)
            self.close(CloseCode.SLOW_READER)
            return
        transport.send(frame)

    # --- provided by each kind ---------------------------------------------------------------

    async def open(self) -> None:
        """Join the room and send the first frames (an AppError closes with its code)."""
        raise NotImplementedError

    async def on_frame(self, message: bytes | str) -> None:
        """One inbound frame, in arrival order (a malformed one goes to `reject`)."""
        raise NotImplementedError

    def error(self, code: str, message: str, msg_id: str | None = None) -> None:
        """Tell the client a frame was refused, in the kind's own wire format."""
        raise NotImplementedError

    def leave(self) -> None:
        """Leave the room (joined or not: `open` may have failed before joining)."""
        raise NotImplementedError

    def resource(self) -> Resource:
        raise NotImplementedError

    def apply_access(self, access: Access | None) -> None:
        """A re-check's result (`None`: the resource is gone): close, or adjust in place."""
        raise NotImplementedError

    def affected_by(self, revocation: Revocation) -> bool:
        """Whether a permission change may concern this socket (the re-check decides)."""
        raise NotImplementedError


class JsonConnection(Connection):
    """A socket kind that speaks JSON objects both ways (boards, the inbox): frames out, errors,
    and the parsing of an inbound frame (a bad one is answered through `reject`)."""

    protocol_name: ClassVar[str] = "this"
    __slots__ = ()

    def send_json(self, frame: dict[str, Any]) -> None:
        if not self.closed:
            self.send(json.dumps(frame, separators=(",", ":"), default=str))

    def error(self, code: str, message: str, msg_id: str | None = None) -> None:
        self.send_json({"type": "error", "code": code, "message": message})

    def json_frame(self, message: str | bytes) -> dict[str, Any] | None:
        """The inbound frame as a JSON object; None (answered) when it is not one."""
        if isinstance(message, bytes):
            self.reject(
                "bad_frame", f"binary frames are not part of the {self.protocol_name} protocol"
            )
            return None
        try:
            frame = json.loads(message)
        except json.JSONDecodeError:
            self.reject("bad_json", "frames must be JSON objects")
            return None
        if not isinstance(frame, dict):
            self.reject("bad_frame", "frames must be JSON objects")
            return None
        return frame


C = TypeVar("C", bound=Connection)


class Hub(Generic[C]):
    """A node component per socket kind: its sockets, their re-checks, presence, shutdown."""

    going_away_reason: ClassVar[str] = CloseCode.GOING_AWAY.reason

    def __init__(self, ctx: Deps) -> None:
        self.ctx = ctx
        self.settings = ctx.settings
        self.sockets: dict[str, C] = {}
        self.stopping = False
        # Token expiry of every socket of this hub, from one timer (live/expiry.py).
        self.expiries = ExpiryClock()
        self._ids = itertools.count(1)
        self._heartbeat: asyncio.Task[None] | None = None

    async def start(self) -> None:
        await subscribe_revocations(self.ctx.nats, self._on_revocation)
        self.ctx.nats.on_reconnect(self._on_reconnect)
        self._heartbeat = self.ctx.spawn(self._presence_heartbeat(), name=f"{self}-presence")

    async def stop(self) -> None:
        """Shutdown: every socket gets 1001 (its client resumes on another node), the sockets
        get `DRAIN_TIMEOUT_S` to finish the frame in hand, then the rooms stop."""
        self.stopping = True
        if self._heartbeat is not None:
            self._heartbeat.cancel()
        sockets = list(self.sockets.values())
        spread_s = self.settings.shutdown_close_spread_s
        loop = asyncio.get_running_loop()
        for conn, delay in zip(sockets, close_delays(len(sockets), spread_s), strict=True):
            loop.call_later(delay, conn.close, CloseCode.GOING_AWAY, self.going_away_reason)
        if sockets:
            waits = [asyncio.ensure_future(c.wait_closed()) for c in sockets]
            await asyncio.wait(waits, timeout=spread_s + DRAIN_TIMEOUT_S)
        await self.stop_rooms()
        self.expiries.stop()
        gone = [c for c in sockets if self._unregister(c)]
        await asyncio.gather(*(self.forget(c) for c in gone), return_exceptions=True)

    def new_conn_id(self) -> str:
        return f"{self.ctx.node_id}-{next(self._ids)}"

    def connect(self, conn: C) -> None:
        """Register a socket and start it (a node that is stopping sends it away at once)."""
        if self.stopping:
            conn.close(CloseCode.GOING_AWAY, self.going_away_reason)
            return
        self.sockets[conn.conn_id] = conn
        OPEN_WEBSOCKETS.labels(conn.kind).inc()
        self.joined(conn)
        conn.start(self.expiries)

    def disconnect(self, conn: C) -> None:
        """The transport is gone: forget the socket (idempotent)."""
        conn.transport_closed()
        if self._unregister(conn):
            self.ctx.spawn(self.forget(conn), name=f"{self}-presence-remove")

    def _unregister(self, conn: C) -> bool:
        if self.sockets.pop(conn.conn_id, None) is None:
            return False
        OPEN_WEBSOCKETS.labels(conn.kind).dec()
        return True

    # --- re-checks ---------------------------------------------------------------------------

    async def _on_revocation(self, revocation: Revocation) -> None:
        mine = [c for c in self.sockets.values() if revocation.user_id in (ANY_USER, c.user_id)]
        if revocation.kind == "session":
            for conn in mine:
                self.ctx.spawn(self.recheck_token(conn, revocation), name="ws-recheck-token")
            return
        for conn in mine:
            if conn.affected_by(revocation):
                self.ctx.spawn(self.recheck_access(conn), name="ws-recheck-access")

    async def recheck_token(self, conn: C, revocation: Revocation | None) -> None:
        if revocation is not None and conn.identity.family_id in revocation.family_ids:
            conn.close(CloseCode.UNAUTHORIZED, "session revoked")
            return
        try:
            await authenticate_token(self.ctx, conn.identity.token)
        except Unauthorized:
            conn.close(CloseCode.UNAUTHORIZED, "session revoked")
        except AppError as err:  # Postgres and Redis both down: keep it, re-check later
            log.warning("ws.recheck_token_failed", conn=conn.conn_id, error=err.message)

    async def recheck_access(self, conn: C) -> None:
        try:
            access = await policy.load_access(self.ctx, conn.user_id, conn.resource())
        except AppError as err:  # both stores down: keep it, the next signal re-checks
            log.warning("ws.recheck_access_failed", conn=conn.conn_id, error=err.message)
            return
        conn.apply_access(access)

    async def _on_reconnect(self) -> None:
        """Signals sent while NATS was away are lost: re-check every socket, and let the rooms
        catch up on what their subscriptions missed."""
        for conn in list(self.sockets.values()):
            self.ctx.spawn(self.recheck_token(conn, None), name="ws-recheck-token")
            self.ctx.spawn(self.recheck_access(conn), name="ws-recheck-access")
        self.resync_rooms()

    # --- presence ----------------------------------------------------------------------------

    async def _presence_heartbeat(self) -> None:
        """Presence entries expire after `presence_ttl_s`; each node renews its own."""
        interval = max(1.0, self.settings.presence_ttl_s / 3)
        while True:
            await asyncio.sleep(interval)
            await self.renew_presence([c for c in self.sockets.values() if not c.closed])

    # --- provided by each kind ---------------------------------------------------------------

    def joined(self, conn: C) -> None:
        """A socket was registered (before its `open`)."""

    async def forget(self, conn: C) -> None:
        """A socket is gone: drop its presence."""

    async def renew_presence(self, conns: list[C]) -> None:
        """Re-write the presence of these live sockets (the heartbeat)."""

    async def stop_rooms(self) -> None:
        raise NotImplementedError

    def resync_rooms(self) -> None:
        """After a NATS reconnect: make every room follow its subject again."""
        raise NotImplementedError

    def __str__(self) -> str:
        return type(self).__name__


class LiveRoom(Protocol):
    """What the registry needs from a room of any kind."""

    @property
    def key(self) -> str: ...

    def has_members(self) -> bool: ...

    async def stop(self) -> None: ...


R = TypeVar("R", bound=LiveRoom)


class RoomRegistry(Generic[R]):
    """The loaded rooms of one kind on this node.

    `acquire(key)` returns the loaded room, sharing one load between concurrent joiners; a room
    whose last socket left is unloaded (stopped, then `unloaded(room)` is called) after `grace_s`
    unless someone comes back in time.
    """

    def __init__(
        self,
        load: Callable[[str], Awaitable[R]],
        *,
        grace_s: float,
        unloaded: Callable[[R], None] | None = None,
    ) -> None:
        self.rooms: dict[str, R] = {}
        self._load_room = load
        self._grace_s = grace_s
        self._unloaded = unloaded
        self._loading: dict[str, asyncio.Task[R]] = {}
        self._unload_timers: dict[str, asyncio.TimerHandle] = {}
        self._waiters: dict[str, int] = {}
        self._stopping: set[asyncio.Task[None]] = set()
        self._stopped = False

    async def acquire(self, key: str) -> R:
        """The loaded room of `key`; concurrent callers share one load."""
        timer = self._unload_timers.pop(key, None)
        if timer is not None:
            timer.cancel()
        room = self.rooms.get(key)
        if room is not None:
            return room
        task = self._loading.get(key)
        if task is None:
            task = asyncio.create_task(self._load(key), name=f"load-{key}")
            self._loading[key] = task
        self._waiters[key] = self._waiters.get(key, 0) + 1
        try:
            return await asyncio.shield(task)
        finally:
            self._waiter_done(key)

    def _waiter_done(self, key: str) -> None:
        """The last caller of a load is back. It joins before yielding to the loop (the
        connections' `open`), so the unload clock started here cannot fire under it; if it gave
        up instead (cancelled, socket closed), the clock makes sure the room still unloads."""
        left = self._waiters.get(key, 1) - 1
        if left > 0:
            self._waiters[key] = left
            return
        self._waiters.pop(key, None)
        room = self.rooms.get(key)
        if room is not None and not room.has_members():
            self.release(room)

    async def _load(self, key: str) -> R:
        try:
            room = await self._load_room(key)
            self.rooms[key] = room
            # Callers still waiting for this load start the unload clock when they are back
            # (`_waiter_done`); started here it could fire before they join (a short grace).
            if not self._waiters.get(key):
                self.release(room)
            return room
        finally:
            self._loading.pop(key, None)

    def release(self, room: R) -> None:
        """`room` may have no members left: start its unload clock."""
        if self._stopped or self.rooms.get(room.key) is not room:
            return
        old = self._unload_timers.pop(room.key, None)
        if old is not None:
            old.cancel()
        self._unload_timers[room.key] = asyncio.get_running_loop().call_later(
            self._grace_s, self._unload, room
        )

    def _unload(self, room: R) -> None:
        self._unload_timers.pop(room.key, None)
        if room.has_members() or self.rooms.get(room.key) is not room:
            return
        del self.rooms[room.key]
        task = asyncio.create_task(room.stop(), name=f"unload-{room.key}")
        self._stopping.add(task)  # awaited by `stop()`: an unload is never cut short or leaked
        task.add_done_callback(self._stopped_one)
        if self._unloaded is not None:
            self._unloaded(room)

    def _stopped_one(self, task: asyncio.Task[None]) -> None:
        self._stopping.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.error("room.stop_failed", task=task.get_name(), error=repr(task.exception()))

    async def stop(self) -> None:
        """Stop every room (the sockets were closed first), and wait for unloads under way."""
        self._stopped = True
        for handle in self._unload_timers.values():
            handle.cancel()
        rooms, self.rooms = list(self.rooms.values()), {}
        stops = [asyncio.ensure_future(room.stop()) for room in rooms]
        pending = [*stops, *self._stopping]
        if not pending:
            return
        _, late = await asyncio.wait(pending, timeout=ROOM_STOP_TIMEOUT_S)
        for task in late:  # a room that cannot stop must not hold the node's shutdown
            log.error("room.stop_timed_out", task=task.get_name())
            task.cancel()
