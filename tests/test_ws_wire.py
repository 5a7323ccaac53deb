"""The fan-out's write path (handlers/ws_wire.py) on real sockets: frames built once are the same
bytes Tornado's own frame writer produces, a short write continues through the stream's buffer in
order, and the unsent-byte count the slow-reader rule reads still sees what the kernel refused."""

from __future__ import annotations

import asyncio
import collections
import socket
from typing import Any

import pytest
import tornado.iostream
import tornado.websocket

from handlers import ws_wire


class FakeConnection:
    """What `write_wire` touches on a Tornado WebSocket protocol: its stream and byte counter."""

    def __init__(self, stream: tornado.iostream.IOStream) -> None:
        self.stream = stream
        self._wire_bytes_out = 0
        self._compressor = None
        self.mask_outgoing = False


class CapturingStream:
    def __init__(self) -> None:
        self.written = b""

    def write(self, data: bytes) -> None:
        self.written += data


def tornado_frame(message: bytes | str) -> bytes:
    """The frame Tornado's own writer builds for `message` (unmasked, as a server sends it)."""
    protocol: Any = object.__new__(tornado.websocket.WebSocketProtocol13)
    protocol.mask_outgoing = False
    protocol._wire_bytes_out = 0
    protocol.stream = CapturingStream()
    payload = message if isinstance(message, bytes) else message.encode()
    protocol._write_frame(True, 0x2 if isinstance(message, bytes) else 0x1, payload)
    return bytes(protocol.stream.written)


@pytest.mark.parametrize("size", [0, 1, 125, 126, 0xFFFF, 0x10000, 300_000])
def test_wire_frame_is_tornados_frame(size: int) -> None:
    binary = bytes(range(256)) * (size // 256) + bytes(size % 256)
    assert ws_wire.wire_frame(binary) == tornado_frame(binary)
    text = "é" * (size // 2)
    assert ws_wire.wire_frame(text) == tornado_frame(text)


def test_the_same_message_is_framed_once_and_a_new_one_again() -> None:
    first = b"\x00\x02\x01x"
    wire = ws_wire.wire_frame(first)
    assert ws_wire.wire_frame(first) is wire
    assert ws_wire.wire_frame(b"other") != wire
    second = bytes(bytearray(first))  # equal bytes, another object: framed on its own
    assert second is not first
    again = ws_wire.wire_frame(second)
    assert again == wire and again is not wire


@pytest.mark.parametrize("lightened", [False, True])
async def test_a_short_write_continues_through_the_stream_in_order(lightened: bool) -> None:
    """A peer that reads slowly: the kernel takes part of a frame, the rest and every later
    frame queue in the stream (counted as unsent), and the reader gets every byte in order --
    with Tornado's deques and with the lists `lighten` puts in their place."""
    server, client = socket.socketpair()
    server.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4096)
    client.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    stream = tornado.iostream.IOStream(server)
    connection = FakeConnection(stream)
    assert ws_wire.supported(connection)
    if lightened:
        ws_wire.lighten(connection)
        assert type(stream._write_buffer._buffers) is not collections.deque
        assert type(stream._write_futures) is not collections.deque
    frames = [ws_wire.wire_frame(bytes([i]) * 50_000) for i in range(6)]
    for wire in frames:
        ws_wire.write_wire(connection, wire)
    written = stream.write(b"")  # resolves once everything before it reached the kernel
    assert not written.done()
    assert ws_wire.unsent_bytes(connection) > 0  # the kernel could not take 300 KB at once
    assert connection._wire_bytes_out == sum(map(len, frames))

    expected = b"".join(frames)
    received = bytearray()
    client.setblocking(False)
    loop = asyncio.get_running_loop()
    while len(received) < len(expected):
        received += await asyncio.wait_for(loop.sock_recv(client, 65536), timeout=10)
    assert bytes(received) == expected
    assert ws_wire.unsent_bytes(connection) == 0
    await asyncio.wait_for(written, timeout=5)
    assert not stream._write_futures and not stream._write_buffer._buffers
    stream.close()
    client.close()


async def test_nothing_queued_goes_straight_to_the_kernel() -> None:
    server, client = socket.socketpair()
    stream = tornado.iostream.IOStream(server)
    connection = FakeConnection(stream)
    wire = ws_wire.wire_frame(b"\x00\x02\x01a")
    ws_wire.write_wire(connection, wire)
    assert ws_wire.unsent_bytes(connection) == 0
    assert not stream._write_buffer
    assert client.recv(100) == wire
    stream.close()
    client.close()


async def test_a_socket_the_peer_closed_closes_the_stream_through_tornado() -> None:
    server, client = socket.socketpair()
    stream = tornado.iostream.IOStream(server)
    closed = asyncio.Event()
    stream.set_close_callback(closed.set)
    client.close()
    connection = FakeConnection(stream)
    ws_wire.write_wire(connection, ws_wire.wire_frame(b"x" * 10))  # EPIPE: left to the stream
    await asyncio.wait_for(closed.wait(), timeout=5)
    assert stream.closed()


def test_tls_and_compressed_sockets_use_tornados_writers() -> None:
    server, client = socket.socketpair()
    plain = FakeConnection(tornado.iostream.IOStream(server))
    assert ws_wire.supported(plain)
    plain._compressor = object()  # type: ignore[assignment]
    assert not ws_wire.supported(plain)
    tls: Any = FakeConnection(tornado.iostream.IOStream(server))
    tls.stream = object.__new__(tornado.iostream.SSLIOStream)
    assert not ws_wire.supported(tls)
    server.close()
    client.close()
