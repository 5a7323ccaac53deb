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

import tornado.iostream
import tornado.websocket
from tornado.util import _websocket_mask

from core.errors import CloseCode

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
    """`WebSocketProtocol13` that parses every frame of each read (see the module docstring)."""

    async def _receive_frame_loop(self) -> None:
        stream = self.stream
        assert stream is not None
        buffer = bytearray()
        budget = 0
        try:
            while not self.client_terminated:
                chunk = await stream.read_bytes(READ_CHUNK, partial=True)
                self._wire_bytes_in += len(chunk)
                buffer += chunk
                start = 0
                while not self.client_terminated:
                    parsed = self._next_frame(buffer, start)
                    if parsed is None:
                        break
                    end, handled = parsed
                    budget += FRAME_COST_BYTES + end - start
                    start = end
                    if handled is not None:
                        await handled
                    if budget >= YIELD_AFTER_BYTES:  # mid-read too: one read holds 10k pings
                        budget = 0
                        await asyncio.sleep(0)
                del buffer[:start]
        except tornado.iostream.StreamClosedError:
            self._abort()
        finally:
            self.handler.on_ws_connection_close(self.close_code, self.close_reason)

    def _next_frame(
        self, buffer: bytearray, start: int
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
