"""Slow and half-open HTTP clients (RELIABILITY S21, issue 17 item 3): the node closes a request
whose headers never finish, a keep-alive connection left idle and a body that never completes,
within the configured timeouts -- Tornado's defaults hold the first two for an hour and the last
forever, so 1,000 half-sent requests from one client pinned 1,000 sockets.
"""

from __future__ import annotations

import asyncio
import dataclasses
import socket

import pytest

from server.settings import Settings
from tests.realtime_support import second_node

pytestmark = pytest.mark.timeout(120)

HALF_OPEN = 1000
TIMEOUT_S = 1.0
# Closing is Tornado's timer firing on a busy 2-core box: allow generous slack over the timeout.
CLOSE_WITHIN_S = TIMEOUT_S + 15.0


async def _connect(port: int) -> socket.socket:
    raw = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    raw.setblocking(False)
    await asyncio.get_running_loop().sock_connect(raw, ("127.0.0.1", port))
    return raw


async def _closed_by_server(raw: socket.socket) -> bytes:
    """Everything the server sends until it closes the connection (EOF)."""
    loop = asyncio.get_running_loop()
    received = b""
    while chunk := await loop.sock_recv(raw, 65536):
        received += chunk
    return received


def _timeouts(settings: Settings) -> Settings:
    return dataclasses.replace(
        settings, http_idle_timeout_s=TIMEOUT_S, http_body_timeout_s=TIMEOUT_S
    )


async def test_half_sent_requests_and_idle_connections_are_closed(settings) -> None:
    """1,000 requests whose headers never end, plus a keep-alive connection gone quiet after one
    request: all closed by the server within the timeout, and the node still answers."""
    loop = asyncio.get_running_loop()
    async with second_node(_timeouts(settings)) as node:
        half_sent = []
        try:
            for _ in range(HALF_OPEN):
                raw = await _connect(node.port)
                half_sent.append(raw)
                await loop.sock_sendall(raw, b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Slow: ")
            idle = await _connect(node.port)
            half_sent.append(idle)
            await loop.sock_sendall(idle, b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")

            ends = await asyncio.wait_for(
                asyncio.gather(*(_closed_by_server(raw) for raw in half_sent)), CLOSE_WITHIN_S
            )
            assert all(end == b"" for end in ends[:HALF_OPEN])  # closed without an answer
            assert ends[-1].startswith(b"HTTP/1.1 200")  # answered, then closed when idle

            fresh = await _connect(node.port)
            half_sent.append(fresh)
            await loop.sock_sendall(
                fresh, b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
            )
            assert (await asyncio.wait_for(_closed_by_server(fresh), 10)).startswith(
                b"HTTP/1.1 200"
            )
        finally:
            for raw in half_sent:
                raw.close()


async def test_a_body_that_never_completes_is_closed(settings) -> None:
    """A request announcing 100 bytes of body and sending 10 is dropped at the body timeout."""
    loop = asyncio.get_running_loop()
    async with second_node(_timeouts(settings)) as node:
        raw = await _connect(node.port)
        try:
            await loop.sock_sendall(
                raw,
                b"POST /api/v1/auth/login/ HTTP/1.1\r\nHost: x\r\n"
                b'Content-Type: application/json\r\nContent-Length: 100\r\n\r\n{"email":',
            )
            assert await asyncio.wait_for(_closed_by_server(raw), CLOSE_WITHIN_S) == b""
        finally:
            raw.close()


def test_defaults_close_slow_clients_within_a_minute() -> None:
    """The shipped defaults, not only the test's: well under Tornado's hour, and long enough for
    a slow mobile upload of a full-size body."""
    defaults = Settings()
    assert 5 <= defaults.http_idle_timeout_s <= 60
    assert 30 <= defaults.http_body_timeout_s <= 120
