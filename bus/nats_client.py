"""nats-py's client, made cheaper where the document update path crosses it.

Every document update carries four headers (`Nats-Msg-Id`, `Collab-Client`, `Collab-User`,
`Collab-Node`: the subject contract) and nats-py parses them for every message it receives —
the room's ordered consumer gets each update back. nats-py 2.16's parser runs a generator over
every character of every header name (`any(c.isspace() for c in key)`); in a py-spy profile of
the 10 × 10 benchmark it was ~10 % of the server's CPU (issue 15). This parser returns exactly
the same dict for every input (tests/test_nats_client.py compares the two on edge cases): names are
stripped of ASCII whitespace and must be ASCII with no whitespace left inside, values are
stripped and decoded as UTF-8 with replacement.

**Direct delivery.** nats-py hands each message of a callback subscription to a queue that a
task per subscription drains: one more event-loop wake-up per message. For the two kinds of
message every update brings -- the PubAck of the JetStream publish (the request mux) and the
update pushed back by the room's ordered consumer -- `deliver_directly` replaces that queue with
a call: the handler runs as nats-py's reader parses the message (handlers are synchronous and
short: resolve a future, apply an entry). Order is unchanged (the reader parses in wire order),
flow control still works (nats-py then counts a message delivered as soon as it is parsed, which
is when it was handled). This relies on nats-py internals (`Subscription._pending_queue`,
`_pending_size`, `_cb`, `Client._resp_map`, `_resp_sub_prefix`, `_inbox_prefix`);
tests/test_nats_client.py pins them, so an upgrade that moves them fails loudly.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Callable
from typing import Any

import nats.errors
import structlog
from nats.aio.client import Client as _NatsPyClient
from nats.aio.msg import Msg
from nats.aio.subscription import Subscription

log = structlog.get_logger(__name__)

_CRLF = b"\r\n"
# What `str.isspace` is true for among ASCII characters (the names are ASCII by then).
_ASCII_SPACE = re.compile(rb"[\t\n\x0b\x0c\r\x1c-\x1f ]")


def parse_header_lines(raw: bytes) -> dict[str, str]:
    """`Name: Value` lines of a NATS header block → dict (the last of a repeated name wins)."""
    out: dict[str, str] = {}
    for line in raw.split(_CRLF):
        name, sep, value = line.partition(b":")
        if not sep:
            continue
        name = name.strip()
        if not name.isascii() or _ASCII_SPACE.search(name) is not None:
            continue
        out[name.decode("ascii")] = value.strip().decode("utf-8", "replace")
    return out


MessageHandler = Callable[[Msg], None]


class _DirectDelivery:
    """Stands in for a subscription's pending queue: `put_nowait` is the handler call."""

    def __init__(self, sub: Subscription, handle: MessageHandler) -> None:
        self._sub = sub
        self._handle = handle

    def put_nowait(self, msg: Msg) -> None:
        self._sub._pending_size -= len(msg.data)
        try:
            self._handle(msg)
        except Exception as err:  # one bad message must not stop nats-py's reader
            log.error("nats.handler_failed", subject=msg.subject, error=repr(err), exc_info=True)

    def qsize(self) -> int:
        return 0

    def empty(self) -> bool:
        return True

    def task_done(self) -> None:
        return None

    async def join(self) -> None:
        return None


def deliver_directly(sub: Subscription, handle: MessageHandler) -> None:
    """Hand every message of `sub` (subscribed without a callback) to `handle` as it is parsed;
    messages that reached the queue before this call are handed over first, in order."""
    if sub._cb is not None:
        raise ValueError("a subscription with a callback has its own task")
    queued: asyncio.Queue[Msg] = sub._pending_queue
    direct = _DirectDelivery(sub, handle)
    sub._pending_queue = direct  # type: ignore[assignment]
    while not queued.empty():
        direct.put_nowait(queued.get_nowait())


class Client(_NatsPyClient):
    """nats-py's `Client`: headers parsed with `parse_header_lines`, request replies (PubAcks,
    JetStream API answers) resolved as they are parsed."""

    _parse_header_lines = staticmethod(parse_header_lines)

    async def _init_request_sub(self) -> None:
        await super()._init_request_sub()
        assert self._resp_sub_prefix is not None
        mux = self._resp_sub_prefix.decode() + "*"
        sub = next(s for s in self._subs.values() if s.subject == mux)
        # The callback nats-py gave it is replaced: its task would stay idle; stop it.
        sub._stop_processing()
        sub._cb = None
        deliver_directly(sub, self._resolve_request)

    async def _request_new_style(
        self,
        subject: str,
        payload: bytes,
        timeout: float = 1,  # noqa: ASYNC109 (nats-py's signature)
        headers: dict[str, Any] | None = None,
    ) -> Msg:
        """nats-py's request, with the reply awaited directly and its timeout as one loop timer:
        `asyncio.wait_for` adds a second future and a callback hop per request, and nats-py's
        extra random token bytes (a `getrandom` syscall each) are not needed for uniqueness (the
        NUID is unique per client). Every JetStream publish is one of these."""
        if self.is_draining_pubs:
            raise nats.errors.ConnectionDrainingError
        if not self._resp_sub_prefix:
            await self._init_request_sub()
        assert self._resp_sub_prefix is not None
        token = self._nuid.next().decode()
        loop = asyncio.get_running_loop()
        future: asyncio.Future[Msg] = loop.create_future()
        self._resp_map[token] = future
        try:
            await self.publish(
                subject, payload, reply=self._resp_sub_prefix.decode() + token, headers=headers
            )
            timer = loop.call_later(timeout, _expire, future)
            try:
                return await future
            finally:
                timer.cancel()
        finally:
            self._resp_map.pop(token, None)

    async def _flush_pending(self, force_flush: bool = False) -> Any:
        """Write what is pending at once when nothing else would: connected, the flusher has no
        flush queued, the transport's own buffer is empty (so the flusher's `drain` would not
        wait either). Otherwise nats-py's flusher task writes it, as before.

        Why: nats-py wakes its flusher task for every publish that finds it idle -- a Future, a
        queue hand-over, a task step and a `drain` coroutine per update at one publish per loop
        turn (issue 15). The bytes, their order and the syscall are the same."""
        writer = getattr(self._transport, "_io_writer", None)
        if (
            not force_flush
            and self._pending_data_size > 0
            and self.is_connected
            and writer is not None
            and self._flush_queue is not None
            and self._flush_queue.empty()
            and writer.transport.get_write_buffer_size() == 0
        ):
            writer.writelines(self._pending)
            self._pending = []
            self._pending_data_size = 0
            return None
        return await super()._flush_pending(force_flush)

    def _resolve_request(self, msg: Msg) -> None:
        """nats-py's `_request_sub_callback`, synchronously."""
        token = msg.subject[len(self._inbox_prefix) + 22 + 2 :]
        future: Any = self._resp_map.get(token)
        if future is not None and not future.done():
            future.set_result(msg)


def _expire(future: asyncio.Future[Msg]) -> None:
    if not future.done():
        future.set_exception(nats.errors.TimeoutError())
