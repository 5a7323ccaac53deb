"""The fan-out's write path: a frame is framed once per batch and handed to each peer's socket.

The hot path of a document's fan-out is one write per peer per update batch (bench/FINDINGS.md).
Tornado's `write_message` wraps each frame in a coroutine and a Task; even its frame writer builds
the header and concatenates per peer, and `IOStream.write` makes a Future and a callback per
write. Server frames are unmasked (RFC 6455 §5.1), so the wire bytes of a message are the same for
every peer: the room hands one message object to all its peers, `wire_frame` frames it once, and
`write_wire` gives the bytes to the kernel directly while the stream has nothing queued -- no
Future, no callback. Whatever the kernel does not take (a short write) goes through the stream's
own buffer, so order is kept and the slow-reader bound (live/hub.py: the stream's unsent bytes)
still sees it: back-pressure comes from the transport's buffer size, as before.

Everything here relies on Tornado internals (`_write_buffer`, the write counters, `socket`), so
`supported()` checks they are there and the handler falls back to the public API if not.
"""

from __future__ import annotations

from typing import Any

import tornado.iostream
import tornado.websocket

_FIN = 0x80
_OPCODE_TEXT = 0x1
_OPCODE_BINARY = 0x2


class _LastFrame:
    """The last message framed, and its wire bytes. A batch's message is one object handed to
    every peer in one loop, so a one-entry cache keyed by identity frames it once; holding the
    message keeps its id from being reused by another object."""

    message: bytes | str | None = None
    wire: bytes = b""


def wire_frame(message: bytes | str) -> bytes:
    """The unmasked, unfragmented, uncompressed WebSocket frame of `message`."""
    if message is _LastFrame.message:
        return _LastFrame.wire
    if isinstance(message, bytes):
        payload, opcode = message, _OPCODE_BINARY
    else:
        payload, opcode = message.encode(), _OPCODE_TEXT
    length = len(payload)
    if length < 126:
        header = bytes((_FIN | opcode, length))
    elif length <= 0xFFFF:
        header = bytes((_FIN | opcode, 126)) + length.to_bytes(2, "big")
    else:
        header = bytes((_FIN | opcode, 127)) + length.to_bytes(8, "big")
    wire = header + payload
    _LastFrame.message, _LastFrame.wire = message, wire
    return wire


def supported(connection: Any) -> bool:
    """Whether frames may bypass Tornado's writers on this connection: Tornado's internals are
    there, the stream is a plain TCP one (a TLS stream must encrypt through its own writer), and
    no compression was negotiated (frames here are never compressed)."""
    stream = getattr(connection, "stream", None)
    return (
        type(stream) is tornado.iostream.IOStream
        and hasattr(stream, "_total_write_done_index")
        and hasattr(stream, "_write_futures")
        and hasattr(getattr(stream, "_write_buffer", None), "_buffers")
        and getattr(connection, "_compressor", None) is None
        and not getattr(connection, "mask_outgoing", True)
    )


def write_wire(connection: Any, wire: bytes) -> None:
    """Write a framed message: straight to the socket while nothing is queued, else (or for
    what a short write left) through the stream's buffer, which keeps the order and counts the
    unsent bytes. A socket error is left to the stream's writer, which closes the stream the way
    Tornado always does (the handler's `on_close` follows)."""
    stream = connection.stream
    connection._wire_bytes_out += len(wire)
    sock = stream.socket
    if sock is not None and not stream._write_buffer:
        try:
            sent = sock.send(wire)
        except (BlockingIOError, InterruptedError):
            sent = 0
        except OSError:
            sent = 0  # the stream's write below hits the same error and closes properly
        if sent == len(wire):
            return
        wire = wire[sent:]
    stream.write(wire)


class _ShortQueue(list[Any]):
    """A list with the one deque method Tornado's IOStream uses beyond a list's (`popleft`).

    The stream keeps its write chunks and write futures in two deques; an empty deque holds a
    64-slot block, so every idle socket carried ~1.5 KB of empty queues (tracemalloc, issue 15).
    A document socket's queues are empty nearly always -- frames go to the kernel directly and
    only a short write's rest is queued -- and short when not (the stream merges small chunks; the
    slow-reader bound caps the bytes), so popping a list's front costs nothing that matters.
    """

    __slots__ = ()

    def popleft(self) -> Any:
        return self.pop(0)


def lighten(connection: Any) -> None:
    """Swap the stream's empty write deques for `_ShortQueue`s (same order, same methods)."""
    stream = connection.stream
    chunks = stream._write_buffer
    if not stream._write_futures and not chunks._buffers:
        stream._write_futures = _ShortQueue()
        chunks._buffers = _ShortQueue()


def unsent_bytes(connection: Any) -> int:
    """Bytes given to the stream that the kernel has not taken yet."""
    stream = connection.stream
    return int(stream._total_write_index - stream._total_write_done_index)


#: Whether this Tornado has the internals at all (checked once; `supported` checks each socket).
AVAILABLE = hasattr(tornado.websocket.WebSocketProtocol13, "_write_frame") and hasattr(
    tornado.iostream.IOStream, "_handle_write"
)
