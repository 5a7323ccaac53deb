"""The socket hub's connection core (live/hub.py) without a socket or a room: what every socket kind
gets by subclassing `Connection` -- the limits, the ordered worker, the slow-reader rule, token
expiry and the close funnel. A toy kind (echo) stands in for the next socket (notifications)."""

from __future__ import annotations

import asyncio
import dataclasses
import time

from core.errors import CloseCode, NotFound
from live.expiry import ExpiryClock
from live.hub import Connection, Identity, SocketLimits, TokenBucket

LIMITS = SocketLimits(
    rate_per_s=1000.0,
    burst=5,
    bad_frames_before_close=2,
    queue_max_msgs=100,
    queue_max_bytes=10_000,
    max_pending_bytes=1000,
    max_frame_bytes=64,
)


class FakeTransport:
    def __init__(self) -> None:
        self.sent: list[bytes | str] = []
        self.unsent = 0
        self.closed: tuple[int, str] | None = None

    def send(self, frame: bytes | str) -> None:
        self.sent.append(frame)
        self.unsent += len(frame)

    def unsent_bytes(self) -> int:
        return self.unsent

    def close(self, code: int, reason: str) -> None:
        self.closed = (code, reason)


class CountingTransport(FakeTransport):
    """Sets `reached` once `count` frames were sent (a wait without polling)."""

    def __init__(self, count: int) -> None:
        super().__init__()
        self.count = count
        self.reached = asyncio.Event()

    def send(self, frame: bytes | str) -> None:
        super().send(frame)
        if len(self.sent) >= self.count:
            self.reached.set()


class Echo(Connection):
    """The smallest socket kind: echoes text frames, rejects the word `bad`."""

    kind = "echo"

    def __init__(self, transport: FakeTransport, *, expires_in_s: float = 60, fail: bool = False):
        identity = Identity("u", "U", "f", "t", int(time.time() + expires_in_s))
        super().__init__(
            conn_id="c1", identity=identity, workspace_id="w", transport=transport, limits=LIMITS
        )
        self.fail = fail
        self.left = False

    async def open(self) -> None:
        if self.fail:
            raise NotFound("no such inbox")

    async def on_frame(self, message: bytes | str) -> None:
        if message == "bad":
            self.reject("bad_frame", "bad")
        else:
            self.send(message)

    def error(self, code: str, message: str, msg_id: str | None = None) -> None:
        self.send(f"error:{code}")

    def leave(self) -> None:
        self.left = True


async def settle() -> None:
    for _ in range(5):
        await asyncio.sleep(0)


async def test_frames_are_handled_in_order_and_echoed() -> None:
    transport = FakeTransport()
    conn = Echo(transport)
    conn.start()
    for text in ("a", "b", "c"):
        conn.receive(text)
    await settle()
    assert transport.sent == ["a", "b", "c"]
    conn.close(CloseCode.GOING_AWAY)
    await conn.wait_closed()
    assert transport.closed == (1001, CloseCode.GOING_AWAY.reason) and conn.left


class CountingLeaves(Echo):
    def __init__(self, transport: FakeTransport) -> None:
        super().__init__(transport)
        self.leaves = 0

    def leave(self) -> None:
        self.leaves += 1


async def test_an_idle_socket_holds_no_worker_and_leaves_once() -> None:
    """The worker is a task only while there are frames (memory per idle socket, issue 15): it
    ends when the queue empties, a frame starts it again, a close while idle starts it to leave
    the room -- once, however often the transport reports the close -- and `wait_closed` waits
    for that even when it was called while the socket was idle."""
    transport = FakeTransport()
    conn = CountingLeaves(transport)
    conn.start()
    await settle()
    assert conn._task is None and conn.leaves == 0  # opened, nothing queued
    conn.receive("a")
    assert conn._task is not None
    conn.receive("b")
    await settle()
    assert transport.sent == ["a", "b"] and conn._task is None
    waiting = asyncio.ensure_future(conn.wait_closed())
    await settle()
    assert not waiting.done()  # idle, still open
    conn.receive("c")
    await settle()
    assert not waiting.done() and transport.sent == ["a", "b", "c"]
    conn.close(CloseCode.GOING_AWAY)
    conn.transport_closed()
    await asyncio.wait_for(waiting, 5)
    conn.transport_closed()
    await settle()
    assert conn.leaves == 1 and conn._task is None
    assert conn.receive("late") is None and transport.sent == ["a", "b", "c"]


async def test_a_flood_is_paced_by_back_pressure_never_dropped() -> None:
    """Over the rate the worker waits for tokens; once the queue is full `receive` hands the
    transport an awaitable (stop reading until it resolves). Every frame is handled, in order."""
    limits = dataclasses.replace(LIMITS, rate_per_s=50.0, queue_max_msgs=4)
    transport = CountingTransport(20)
    conn = Echo(transport)
    conn.limits = limits
    conn._bucket = TokenBucket(limits.rate_per_s, limits.burst)
    conn.start()
    started = time.monotonic()
    paused = 0
    for i in range(20):
        wait = conn.receive(str(i))
        if wait is not None:  # what Tornado does with on_message's awaitable
            paused += 1
            assert conn.queued_frames == 4
            await wait
    await asyncio.wait_for(transport.reached.wait(), 5)
    assert transport.sent == [str(i) for i in range(20)] and transport.closed is None
    assert paused > 0
    assert time.monotonic() - started >= (20 - 5) / 50 * 0.9  # burst 5, then 50/s
    conn.close(CloseCode.GOING_AWAY)
    await conn.wait_closed()


class Ignoring(Echo):
    """Echo, but frames starting with `~` need no work (like a stock provider's awareness echo)."""

    kind = "ignoring"

    def __init__(self, transport: FakeTransport) -> None:
        super().__init__(transport)
        self.handled: list[bytes | str] = []

    def settles_at_once(self, message: bytes | str) -> bool:
        return isinstance(message, str) and message.startswith("~")

    async def on_frame(self, message: bytes | str) -> None:
        self.handled.append(message)
        await super().on_frame(message)


async def test_a_frame_that_needs_no_work_is_settled_without_the_worker_when_it_is_idle() -> None:
    transport = FakeTransport()
    conn = Ignoring(transport)
    conn.start()
    await settle()
    tokens = conn._bucket.tokens
    assert conn.receive("~echo") is None
    assert conn.queued_frames == 0 and conn._bucket.tokens == tokens - 1  # it still costs a token
    await settle()
    assert conn.handled == [] and transport.sent == []
    conn.close(CloseCode.GOING_AWAY)
    await conn.wait_closed()


async def test_with_the_worker_busy_or_out_of_tokens_such_a_frame_waits_its_turn() -> None:
    """Settled in place only when that is where the worker would handle it next: not behind
    queued frames (their order and effects come first), not ahead of the token bucket."""
    transport = FakeTransport()
    conn = Ignoring(transport)
    conn.start()
    await settle()
    conn.receive("a")  # wakes the worker; until it runs, the next frame queues behind it
    conn.receive("~behind a")
    await settle()
    assert conn.handled == ["a", "~behind a"]
    conn._bucket.tokens = 0.0
    conn._bucket.updated = time.monotonic() + 3600  # no token for the next hour
    conn.receive("~no token")
    assert conn.queued_frames == 1
    conn.close(CloseCode.GOING_AWAY)
    await conn.wait_closed()


async def test_closing_releases_a_paused_reader() -> None:
    limits = dataclasses.replace(LIMITS, queue_max_msgs=1)
    conn = Echo(FakeTransport())
    conn.limits = limits
    wait = conn.receive("x")  # no worker: the queue stays full
    assert wait is not None and not wait.done()
    conn.close(CloseCode.GOING_AWAY)
    await asyncio.wait_for(wait, 1)


async def test_limits_close_with_their_codes() -> None:
    big = FakeTransport()
    Echo(big).receive("x" * 65)
    assert big.closed == (CloseCode.TOO_BIG, "frames are limited to 64 bytes")

    bad = FakeTransport()
    conn = Echo(bad)
    conn.start()
    for _ in range(3):
        conn.receive("bad")
    await settle()
    assert bad.closed == (CloseCode.BAD_REQUEST, "too many malformed messages")
    assert bad.sent == ["error:bad_frame", "error:bad_frame"]


async def test_slow_reader_is_closed_with_1008_and_nothing_more_is_queued() -> None:
    transport = FakeTransport()
    conn = Echo(transport)
    for _ in range(20):
        conn.send("y" * 100)
    assert transport.closed is not None and transport.closed[0] == CloseCode.SLOW_READER == 1008
    assert transport.unsent == 1000  # ten frames fit the bound; nothing was queued after it


async def test_the_hub_clock_closes_each_socket_at_its_token_expiry() -> None:
    """A hub's sockets wait on one expiry clock (live/expiry.py) instead of a timer each: the one
    whose token expired is closed with 4401, one closed before is forgotten, a later one stays."""
    clock = ExpiryClock()
    transports = {name: FakeTransport() for name in ("later", "expired", "gone")}
    conns = {
        name: Echo(transport, expires_in_s=3600 if name == "later" else 0)
        for name, transport in transports.items()
    }
    for conn in conns.values():  # the later one first: the clock re-arms for the earlier
        conn.start(clock)
    conns["gone"].close(CloseCode.GOING_AWAY)
    await settle()
    assert transports["expired"].closed == (CloseCode.UNAUTHORIZED, "token expired")
    assert transports["gone"].closed == (CloseCode.GOING_AWAY, CloseCode.GOING_AWAY.reason)
    assert transports["later"].closed is None and len(clock) == 1
    conns["later"].close(CloseCode.GOING_AWAY)
    assert len(clock) == 0
    clock.stop()


class BrokenSocket:
    def expire(self) -> None:
        raise RuntimeError("close failed")


async def test_a_failing_expiry_does_not_keep_later_sockets_open() -> None:
    clock = ExpiryClock()
    clock.add(BrokenSocket(), int(time.time()) - 1)  # an earlier second: handled first
    transport = FakeTransport()
    Echo(transport, expires_in_s=0).start(clock)
    await settle()
    assert transport.closed == (CloseCode.UNAUTHORIZED, "token expired")
    clock.stop()


async def test_expired_token_and_failed_open_go_through_the_funnel() -> None:
    expiring = FakeTransport()
    conn = Echo(expiring, expires_in_s=0)
    conn.start()
    await settle()
    assert expiring.closed == (CloseCode.UNAUTHORIZED, "token expired")

    missing = FakeTransport()
    conn = Echo(missing, fail=True)
    conn.start()
    await conn.wait_closed()
    assert missing.closed == (CloseCode.NOT_FOUND, "no such inbox") and conn.left
