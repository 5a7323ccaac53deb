"""The socket read path (handlers/ws_reader.py) against Tornado's own reader, on real sockets.

Every script of raw client bytes -- frames coalesced into one write, dribbled a byte at a time,
long lengths, fragments with a ping between them, a close, and each kind of bad frame -- is sent
to a server reading with Tornado's `WebSocketProtocol13` and to one reading with
`ChunkReadingProtocol`; what the handler saw and what came back on the wire must be the same.
"""

from __future__ import annotations

import asyncio
import base64
import os
import socket
import struct
from collections.abc import Awaitable
from typing import Any

import pytest
import tornado.httpserver
import tornado.netutil
import tornado.web
import tornado.websocket

from handlers.ws_reader import ChunkReadingProtocol

MAX_MESSAGE = 100_000


class RecordingHandler(tornado.websocket.WebSocketHandler):
    """Records every callback; `hold` makes on_message return a pending Future (back-pressure)."""

    protocol_class: type[tornado.websocket.WebSocketProtocol13] = (
        tornado.websocket.WebSocketProtocol13
    )

    def initialize(self, seen: list[Any], held: list[asyncio.Future[None]]) -> None:
        self.seen = seen
        self.held = held

    def get_websocket_protocol(self) -> tornado.websocket.WebSocketProtocol | None:
        params = tornado.websocket._WebSocketParams(max_message_size=MAX_MESSAGE)
        return self.protocol_class(self, False, params)

    def on_message(self, message: str | bytes) -> Awaitable[None] | None:
        self.seen.append(("message", message))
        if message == b"hold":
            future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
            self.held.append(future)
            return future
        return None

    def on_ping(self, data: bytes) -> None:
        self.seen.append(("ping", data))

    def on_pong(self, data: bytes) -> None:
        self.seen.append(("pong", data))

    def on_close(self) -> None:
        self.seen.append(("close", self.close_code, self.close_reason))


class ChunkReadingHandler(RecordingHandler):
    protocol_class = ChunkReadingProtocol


def frame(
    opcode: int, payload: bytes, *, fin: bool = True, rsv: int = 0, masked: bool = True
) -> bytes:
    """A client frame (masked, as RFC 6455 requires of clients)."""
    first = (0x80 if fin else 0) | rsv | opcode
    length = len(payload)
    mask_bit = 0x80 if masked else 0
    if length < 126:
        header = bytes((first, mask_bit | length))
    elif length <= 0xFFFF:
        header = bytes((first, mask_bit | 126)) + struct.pack("!H", length)
    else:
        header = bytes((first, mask_bit | 127)) + struct.pack("!Q", length)
    if not masked:
        return header + payload
    key = os.urandom(4)
    return header + key + bytes(b ^ key[i % 4] for i, b in enumerate(payload))


def close_frame(code: int, reason: bytes = b"") -> bytes:
    return frame(0x8, struct.pack("!H", code) + reason)


async def serve(handler: type[RecordingHandler]) -> tuple[Any, int, list[Any], list[Any]]:
    seen: list[Any] = []
    held: list[asyncio.Future[None]] = []
    app = tornado.web.Application([("/ws", handler, {"seen": seen, "held": held})])
    sockets = tornado.netutil.bind_sockets(0, "127.0.0.1", family=socket.AF_INET)
    server = tornado.httpserver.HTTPServer(app)
    server.add_sockets(sockets)
    return server, sockets[0].getsockname()[1], seen, held


async def open_socket(port: int) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    key = base64.b64encode(os.urandom(16)).decode()
    writer.write(
        (
            "GET /ws HTTP/1.1\r\nHost: localhost\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
            f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n"
        ).encode()
    )
    head = await reader.readuntil(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 101"), head
    return reader, writer


async def read_server_frames(
    reader: asyncio.StreamReader, quiet_s: float
) -> list[tuple[int, bytes]]:
    """Server frames until the server closes the TCP connection or it is quiet for `quiet_s`."""
    data = b""
    while True:
        try:
            chunk = await asyncio.wait_for(reader.read(65536), quiet_s)
        except (TimeoutError, ConnectionResetError):
            break
        if not chunk:
            break
        data += chunk
    frames = []
    while len(data) >= 2:
        length, offset = data[1] & 0x7F, 2
        if length == 126:
            length, offset = struct.unpack("!H", data[2:4])[0], 4
        elif length == 127:
            length, offset = struct.unpack("!Q", data[2:10])[0], 10
        frames.append((data[0] & 0x0F, data[offset : offset + length]))
        data = data[offset + length :]
    return frames


async def run_script(
    handler: type[RecordingHandler], chunks: list[bytes], *, release_after: float | None = None
) -> tuple[list[Any], list[tuple[int, bytes]]]:
    """Send `chunks` as separate writes; what the handler saw and what the server sent back."""
    server, port, seen, held = await serve(handler)
    reader, writer = await open_socket(port)
    try:
        for chunk in chunks:
            writer.write(chunk)
            await writer.drain()
            await asyncio.sleep(0.002)
        if release_after is not None:
            await asyncio.sleep(release_after)
            assert len(messages(seen)) == 1, seen
            for future in held:
                future.set_result(None)
        frames = await read_server_frames(reader, quiet_s=0.5)
    finally:
        writer.close()
    for _ in range(200):  # on_close follows the server's close, or the client's end of the TCP
        if seen and seen[-1][0] == "close":
            break
        await asyncio.sleep(0.01)
    server.stop()
    return list(seen), frames


def messages(seen: list[Any]) -> list[Any]:
    return [entry[1] for entry in seen if entry[0] == "message"]


def dribble(data: bytes) -> list[bytes]:
    return [data[i : i + 1] for i in range(len(data))]


LONG = bytes(range(256)) * 300  # 76,800 bytes: a 64-bit length
MEDIUM = b"m" * 300  # a 16-bit length
LONG_FRAME = frame(0x2, LONG)
MANY = [frame(0x2, f"update {i}".encode()) for i in range(60)]

SCRIPTS: dict[str, list[bytes]] = {
    "many frames in one write": [b"".join(MANY) + close_frame(1000)],
    "every frame its own write": [*MANY, close_frame(1000)],
    "dribbled a byte at a time": [
        *dribble(frame(0x2, b"abc") + frame(0x1, "é€".encode())),
        close_frame(1000, b"bye"),
    ],
    "long lengths": [frame(0x2, MEDIUM) + LONG_FRAME[:1000], LONG_FRAME[1000:] + close_frame(1000)],
    "a long frame in many reads, a frame after it": [
        *(LONG_FRAME[i : i + 4096] for i in range(0, len(LONG_FRAME), 4096)),
        frame(0x2, b"after") + close_frame(1000),
    ],
    "empty messages": [frame(0x2, b"") + frame(0x1, b"") + close_frame(1001)],
    "fragments with a ping between": [
        frame(0x1, b"hel", fin=False) + frame(0x9, b"are you there") + frame(0x0, b"lo", fin=False),
        frame(0x0, " wörld".encode()) + close_frame(1000),
    ],
    "a pong": [frame(0xA, b"pong data") + close_frame(1000)],
    "close without a code": [frame(0x8, b"")],
    "invalid UTF-8 text aborts": [frame(0x1, b"\xff\xfe") + frame(0x2, b"never")],
    "reserved bits abort": [frame(0x2, b"x", rsv=0x40) + frame(0x2, b"never")],
    "long control frame aborts": [frame(0x9, b"p" * 126)],
    "fragmented control frame aborts": [frame(0x9, b"p", fin=False)],
    "unknown opcode aborts": [frame(0x3, b"x")],
    "continuation of nothing aborts": [frame(0x0, b"x")],
    "new message inside a fragmented one aborts": [frame(0x2, b"a", fin=False) + frame(0x2, b"b")],
    # Only the headers of the oversized frames: the refusal comes before the payload is read,
    # and unread bytes would turn the server's close into a reset that races the close frame.
    "too big is refused with 1009": [frame(0x2, b"z" * (MAX_MESSAGE + 1))[:14]],
    "too big across fragments is refused": [
        frame(0x2, b"z" * 60_000, fin=False) + frame(0x0, b"z" * 60_000)[:8]
    ],
    "unmasked frames are read as Tornado reads them": [frame(0x2, b"plain", masked=False)],
}


@pytest.mark.parametrize("name", list(SCRIPTS))
async def test_reads_what_tornados_reader_reads(name: str) -> None:
    chunks = SCRIPTS[name]
    expected = await run_script(RecordingHandler, chunks)
    got = await run_script(ChunkReadingHandler, chunks)
    assert got == expected
    assert expected[0], "the script must make the handler see something"


async def test_the_scripts_exercise_what_they_say() -> None:
    """The differential test above is only as good as its scripts: spot-check what they do."""
    seen, frames = await run_script(ChunkReadingHandler, SCRIPTS["many frames in one write"])
    assert messages(seen) == [f"update {i}".encode() for i in range(60)]
    assert frames == [(0x8, struct.pack("!H", 1000))]
    seen, frames = await run_script(ChunkReadingHandler, SCRIPTS["fragments with a ping between"])
    assert ("message", "hello wörld") in seen and ("ping", b"are you there") in seen
    assert (0xA, b"are you there") in frames
    seen, frames = await run_script(ChunkReadingHandler, SCRIPTS["long lengths"])
    assert ("message", LONG) in seen and ("message", MEDIUM) in seen
    seen, frames = await run_script(ChunkReadingHandler, SCRIPTS["too big is refused with 1009"])
    assert frames[0] == (0x8, struct.pack("!H", 1009) + b"message too big")
    assert not messages(seen)
    seen, _ = await run_script(ChunkReadingHandler, SCRIPTS["invalid UTF-8 text aborts"])
    assert not messages(seen)


async def test_a_pending_on_message_stops_the_reading() -> None:
    """Back-pressure: while on_message's awaitable is pending no further frame is handled, even
    when it already sits in the same read; once it resolves the rest follows in order."""
    chunks = [
        frame(0x2, b"hold") + frame(0x2, b"after 1") + frame(0x2, b"after 2") + close_frame(1000)
    ]
    seen, _ = await run_script(ChunkReadingHandler, chunks, release_after=0.2)
    assert messages(seen) == [b"hold", b"after 1", b"after 2"]
    assert seen[-1] == ("close", 1000, None)


class TurnCountingHandler(ChunkReadingHandler):
    """Notes, for each ping, how many event-loop turns a probe task had seen by then."""

    turns = 0

    def on_ping(self, data: bytes) -> None:
        self.seen.append(("ping at turn", TurnCountingHandler.turns))


async def test_one_read_full_of_frames_still_lets_the_loop_turn() -> None:
    """A hostile client packs one read with thousands of pings (no on_message awaitable to pause
    on): the reader yields to the loop within the read, as Tornado's reader does between frames,
    instead of answering all of them in one go."""

    async def count_turns() -> None:
        while True:
            TurnCountingHandler.turns += 1
            await asyncio.sleep(0)

    probe = asyncio.ensure_future(count_turns())
    try:
        pings = frame(0x9, b"") * 2000  # 12 kB: one read; 2000 frames cost ~2 MB of budget
        seen, _ = await run_script(TurnCountingHandler, [pings + close_frame(1000)])
    finally:
        probe.cancel()
    turns = [entry[1] for entry in seen if entry[0] == "ping at turn"]
    assert len(turns) == 2000
    assert turns[-1] > turns[0]  # other tasks ran while the read was being answered
