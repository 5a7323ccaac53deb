"""A WebSocket protocol that refuses an oversized frame with a close frame the client can read.

Tornado answers a frame over `websocket_max_message_size` with close 1009 and then closes the TCP
socket at once, while the rest of the client's frame is still arriving. Closing a socket with
unread bytes makes the kernel send a reset (RST) instead of a FIN; a client whose own write is
still in progress then sees the write fail (EPIPE/ECONNRESET) and may tear its socket down before
it has read the close frame sitting in its receive buffer. The stock y-websocket client (Node `ws`)
then reports 1006 "abnormal closure" instead of 1009, depending on which event its loop handles
first -- under CPU load it often loses the race (issue 17 item 11).

The fix is the one HTTP servers use for a refused request body (nginx `lingering_close`): after the
close frame, send FIN (`shutdown(SHUT_WR)`) and read and discard what the client still sends, for
a bounded time and byte count, so its write completes and it reads the close frame in order; then
close. Only the oversized-frame path changes; every other close is Tornado's.
"""

from __future__ import annotations

import asyncio
import socket
from typing import Any

import structlog
import tornado.iostream
import tornado.websocket

from core.errors import CloseCode
from handlers.ws_reader import ChunkReadingProtocol

log = structlog.get_logger("collab.ws")

# Same bound as Tornado's own wait for a client's close reply: a client still sending after this
# is dropped the hard way. At loopback or LAN speed a 10 MB frame drains in milliseconds.
LINGER_S = 5.0
# Discarding costs a read per 64 KiB; stop early if a client streams garbage at full speed.
LINGER_MAX_BYTES = 64 * 1024 * 1024
_READ_CHUNK = 64 * 1024


class LingeringCloseProtocol(ChunkReadingProtocol):
    """The socket protocol (frames read by handlers/ws_reader.py) whose abort after a 1009 close
    drains the socket instead of resetting it (see the module docstring)."""

    _refused_frame = False
    _lingering = False

    def close(self, code: int | None = None, reason: str | None = None) -> None:
        if code == CloseCode.TOO_BIG and not self.server_terminated:
            self._refused_frame = True
        super().close(code, reason)

    def _abort(self) -> None:
        if self._lingering:
            return  # Tornado aborts again from on_connection_close; the drain owns the stream
        stream = self.stream
        if not self._refused_frame or stream is None or stream.closed():
            super()._abort()
            return
        self._lingering = True
        self.client_terminated = True
        self.server_terminated = True
        waiting = getattr(self, "_waiting", None)
        if waiting is not None:
            stream.io_loop.remove_timeout(waiting)
            self._waiting = None
        _spawn(_drain_then_close(stream))


_draining: set[asyncio.Task[None]] = set()


def _spawn(coro: Any) -> None:
    """Keep a reference so the drain task is not garbage-collected mid-way."""
    task = asyncio.ensure_future(coro)
    _draining.add(task)
    task.add_done_callback(_draining.discard)


async def _drain_then_close(stream: tornado.iostream.IOStream) -> None:
    """Flush the close frame, half-close, discard inbound bytes until EOF or the bounds; close."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + LINGER_S
    drained = 0
    try:
        await stream.write(b"")  # resolves once the close frame is handed to the kernel
        stream.socket.shutdown(socket.SHUT_WR)
        while drained < LINGER_MAX_BYTES:
            remaining = deadline - loop.time()
            if remaining <= 0:
                break
            chunk = await asyncio.wait_for(stream.read_bytes(_READ_CHUNK, partial=True), remaining)
            drained += len(chunk)
    except (tornado.iostream.StreamClosedError, TimeoutError, OSError):
        pass  # the client closed (the normal end), or the bounds ran out
    finally:
        stream.close()
    log.debug("ws.lingering_close", drained=drained)


def lingering_protocol(
    handler: tornado.websocket.WebSocketHandler,
    protocol: tornado.websocket.WebSocketProtocol | None,
) -> tornado.websocket.WebSocketProtocol | None:
    """The protocol Tornado chose for `handler`, as a `LingeringCloseProtocol` when it is RFC 6455
    (version 13, the only one Tornado speaks); anything else is returned unchanged."""
    if type(protocol) is not tornado.websocket.WebSocketProtocol13:
        return protocol
    return LingeringCloseProtocol(handler, False, protocol.params)
