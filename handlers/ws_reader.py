"""The read path of a socket: every frame in whatever the kernel has, parsed from one buffer.

Tornado's reader awaits each frame's header and then its payload (two `read_bytes` per frame,
more for long lengths and the mask), and between the two its stream drops and re-adds its read
interest: per inbound frame two epoll re-registrations, a coroutine and several Futures
(bench/FINDINGS.md §6.3). A document socket's frames are small -- a keystroke update, an
awareness renewal, the echo a stock provider sends back for every awareness update it receives
(twenty per renewal in a room of twenty) -- so that per-frame machinery, not the bytes, is what
reading costs, and it is what saturated a node during a room-wide awareness renewal at 50 x 20.

`ChunkReadingProtocol` reads whatever is there (`read_bytes(partial=True)`: one read, the stream
keeps its read interest because its buffer ends empty) and hands every complete frame in it to
Tornado's own `_handle_message` -- the same decoding, close handshake, ping/pong, size limit and
back-pressure (a pending `on_message` awaitable stops the reading) as `_receive_frame`, whose
checks this mirrors one for one. It relies on Tornado internals like handlers/ws_wire.py
(tests/test_ws_reader.py pins them).
"""

from __future__ import annotations

import asyncio
import struct
from typing import cast

import structlog
import tornado.iostream
import tornado.websocket
from tornado.util import _websocket_mask

from core.errors import CloseCode

log = structlog.get_logger("collab.ws")

#: One read takes at most this much (Tornado's own read chunk size).
READ_CHUNK = 64 * 1024
#: Yield to the event loop after this much parsing in one go, like Tornado's reader does, so a
#: socket whose data is always there cannot keep the loop to itself.
YIELD_AFTER_BYTES = 256 * 1024
#: A frame costs as much as this many bytes in that budget (Tornado's figure).
FRAME_COST_BYTES = 1024

_FIN = 0x80
_RSV_MASK = 0x70
_RSV1 = 0x40
_OPCODE_MASK = 0x0F
_CONTROL = 0x08
_MASKED = 0x80
_LENGTH_MASK = 0x7F
_UNPACK_16 = struct.Struct("!H").unpack_from
_UNPACK_64 = struct.Struct("!Q").unpack_from


class ChunkReadingProtocol(tornado.websocket.WebSocketProtocol13):
    """`WebSocketProtocol13` that parses every frame of each read (see the module docstring).

    Reading is driven by callbacks, not by a coroutine: Tornado awaits `_receive_frame_loop` from
    the upgrade request's handler coroutine, so a reading coroutine kept that whole chain -- the
    request's task and four coroutine frames -- alive for every idle socket's life (issue 15,
    memory per idle connection). Here `_receive_frame_loop` starts the first read and returns; each
    read's completion parses what arrived and starts the next, and the request's task ends.
    """

    # Slots, not attributes: Tornado's protocol already has ~30 attributes, and one more key in
    # its instance dict made CPython give the dict a table of its own (+1.5 KB per socket, seen
    # with tracemalloc; the same limit as the handler's, bench/FINDINGS.md §6.2).
    __slots__ = ("_budget", "_pending", "_reading_finished")

    async def _receive_frame_loop(self) -> None:
        # The bytes read and not parsed yet: empty between frames (an idle socket holds no
        # buffer), the read itself while it is parsed (no copy), a bytearray only while a long
        # frame arrives read by read.
        self._pending: bytes | bytearray = b""
        self._budget = 0
        self._reading_finished = False
        self._read_more()

    def _read_more(self) -> None:
        """Start the next read; its completion continues in `_on_chunk`."""
        stream = self.stream
        assert stream is not None
        try:
            # A Future (typed as an Awaitable), resolved at once if the bytes are already buffered
            reading = cast("asyncio.Future[bytes]", stream.read_bytes(READ_CHUNK, partial=True))
        except tornado.iostream.StreamClosedError:
            self._stop_reading()
            return
        reading.add_done_callback(self._on_chunk)

    def _on_chunk(self, reading: asyncio.Future[bytes]) -> None:
        try:
            chunk = reading.result()
        except tornado.iostream.StreamClosedError:
            self._stop_reading()
            return
        self._wire_bytes_in += len(chunk)
        pending = self._pending
        if not pending:
            self._pending = chunk
        else:  # the rest of a frame: appended to a bytearray (amortised, read after read)
            if not isinstance(pending, bytearray):
                pending = self._pending = bytearray(pending)
            pending += chunk
        self._parse_guarded()

    def _parse(self) -> None:
        """Handle every complete frame in the buffer, then read on -- unless `on_message` asked
        to wait (back-pressure: the socket's queue is full) or the budget says to let the loop
        turn first; either continues here later."""
        buffer = self._pending
        start = 0
        paused: asyncio.Future[None] | None = None
        yielding = False
        while not self.client_terminated:
            parsed = self._next_frame(buffer, start)
            if parsed is None:
                break
            end, handled = parsed
            self._budget += FRAME_COST_BYTES + end - start
            start = end
            if handled is not None and not handled.done():
                paused = handled
                break
            if self._budget >= YIELD_AFTER_BYTES:  # mid-read too: one read holds 10k pings
                self._budget = 0
                yielding = True
                break
        if start >= len(buffer):
            self._pending = b""
        elif start:
            self._pending = bytes(buffer[start:])  # the start of a frame: at most one read's worth
        if self.client_terminated:
            self._finished_reading()
        elif paused is not None:
            paused.add_done_callback(self._resume)
        elif yielding:
            asyncio.get_running_loop().call_soon(self._continue)
        else:
            self._read_more()

    def _resume(self, paused: asyncio.Future[None]) -> None:
        if paused.cancelled() or paused.exception() is not None:
            self._abort()  # as an awaited failure ended Tornado's reading loop
        self._continue()

    def _continue(self) -> None:
        if self.client_terminated:
            self._finished_reading()
        else:
            self._parse_guarded()

    def _parse_guarded(self) -> None:
        """`_parse` from a callback: a bug must close the socket, not leave it unread (in a
        coroutine it would have ended the reading loop)."""
        try:
            self._parse()
        except Exception:
            log.exception("ws.read_failed")
            self._stop_reading()

    def _stop_reading(self) -> None:
        """The stream is gone or unusable: drop the connection and end reading."""
        self._abort()
        self._finished_reading()

    def _finished_reading(self) -> None:
        """The end of reading, whichever way it came (close frame, abort, closed stream); once."""
        if self._reading_finished:
            return
        self._reading_finished = True
        self.handler.on_ws_connection_close(self.close_code, self.close_reason)

    def _next_frame(
        self, buffer: bytes | bytearray, start: int
    ) -> tuple[int, asyncio.Future[None] | None] | None:
        """Handle the frame at `start` if it is complete: (where the next one starts, what
        `on_message` returned). None if the frame is incomplete or the socket was aborted."""
        available = len(buffer) - start
        if available < 2:
            return None
        header, second = buffer[start], buffer[start + 1]
        is_final = header & _FIN
        reserved = header & _RSV_MASK
        opcode = header & _OPCODE_MASK
        if self._decompressor is not None and opcode != 0:
            # The compression flag is on a message's first frame; it is decompressed whole.
            self._frame_compressed = bool(reserved & _RSV1)
            reserved &= ~_RSV1
        if reserved:
            self._abort()  # an extension the client did not negotiate
            return None
        length = second & _LENGTH_MASK
        offset = start + 2
        if opcode & _CONTROL and length >= 126:
            self._abort()  # control frames carry at most 125 bytes
            return None
        if length == 126:
            if available < 4:
                return None
            length = _UNPACK_16(buffer, offset)[0]
            offset += 2
        elif length == 127:
            if available < 10:
                return None
            length = _UNPACK_64(buffer, offset)[0]
            offset += 8
        fragments = self._fragmented_message_buffer
        if length + (len(fragments) if fragments is not None else 0) > self.params.max_message_size:
            self.close(CloseCode.TOO_BIG, "message too big")
            self._abort()
            return None
        mask = None
        if second & _MASKED:
            mask = bytes(buffer[offset : offset + 4])
            offset += 4
        end = offset + length
        if len(buffer) < end:
            return None
        data = bytes(buffer[offset:end])
        if mask is not None:
            data = _websocket_mask(mask, data)
        return end, self._dispatch(opcode, bool(is_final), data)

    def _dispatch(self, opcode: int, is_final: bool, data: bytes) -> asyncio.Future[None] | None:
        """What `_receive_frame` does with a frame once read: fragments joined, then the message
        to Tornado's `_handle_message` (decode, close handshake, ping/pong, `on_message`)."""
        if opcode & _CONTROL:
            if not is_final:
                self._abort()  # control frames are never fragmented
                return None
        elif opcode == 0:  # continuation
            fragments = self._fragmented_message_buffer
            if fragments is None:
                self._abort()  # nothing to continue
                return None
            fragments.extend(data)
            if not is_final:
                return None
            opcode = int(self._fragmented_message_opcode or 0)
            data = bytes(fragments)
            self._fragmented_message_buffer = None
        else:  # the start of a data message
            if self._fragmented_message_buffer is not None:
                self._abort()  # the previous message is not finished
                return None
            if not is_final:
                self._fragmented_message_opcode = opcode  # type: ignore[assignment]
                self._fragmented_message_buffer = bytearray(data)
                return None
        return self._handle_message(opcode, data)
