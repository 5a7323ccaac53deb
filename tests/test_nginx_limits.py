"""The shipped nginx config limits each client address (RELIABILITY S6, issue 17 item 3): a burst
of requests or of WebSocket handshakes from one address past `limit_req` gets 429 with the API's
JSON error body and `Retry-After`, while the node behind stays healthy. Real nginx (Debian) runs
`ops/deploy/nginx.conf` itself in front of a test node (tests/balancer.py).
"""

from __future__ import annotations

import asyncio
import base64
import dataclasses
import json
import os
import re

import pytest
import tornado.httpclient

from tests.balancer import NGINX_CONF, Balancer
from tests.realtime_support import document_with, second_node

pytestmark = pytest.mark.timeout(120)

REQUEST_BURST = int(re.search(r"zone=requests_per_ip burst=(\d+)", NGINX_CONF.read_text())[1])
REQUEST_RATE = int(re.search(r"zone=requests_per_ip:\S+ rate=(\d+)r/s", NGINX_CONF.read_text())[1])
HANDSHAKE_BURST = int(re.search(r"zone=handshakes_per_ip burst=(\d+)", NGINX_CONF.read_text())[1])


async def _raw_request(port: int, request: bytes) -> bytes:
    """One request on its own connection; the status line and headers (and body if any)."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        writer.write(request)
        await writer.drain()
        head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 20)
        length = re.search(rb"Content-Length: (\d+)", head, re.I)
        body = await reader.readexactly(int(length[1])) if length else b""
        return head + body
    finally:
        writer.close()


def _handshake(doc_id: str, token: str) -> bytes:
    key = base64.b64encode(os.urandom(16)).decode()
    return (
        f"GET /ws/documents/{doc_id}?token={token} HTTP/1.1\r\nHost: collab\r\n"
        f"Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: {key}\r\n"
        "Sec-WebSocket-Version: 13\r\n\r\n"
    ).encode()


def _assert_json_429(response: bytes) -> None:
    head, _, body = response.partition(b"\r\n\r\n")
    assert b"Retry-After: 1" in head
    assert json.loads(body)["error"]["code"] == "rate_limited"


async def test_request_and_handshake_bursts_from_one_address_get_json_429(ctx, settings) -> None:
    setup = await document_with(ctx, "editor")
    token = setup.users["editor"].access_token
    # The node's own per-address cap would refuse first (all of this comes from 127.0.0.1).
    uncapped = dataclasses.replace(
        settings, ws_max_sockets_per_ip=1000, ws_max_sockets_per_user=1000
    )
    async with second_node(uncapped) as node:
        with Balancer([node.port]) as balancer:
            plain = b"GET /healthz HTTP/1.1\r\nHost: collab\r\nConnection: close\r\n\r\n"
            answers = await asyncio.gather(
                *(_raw_request(balancer.port, plain) for _ in range(REQUEST_BURST + 100))
            )
            limited = [a for a in answers if a.startswith(b"HTTP/1.1 429")]
            assert len(limited) >= 50, [a[:12] for a in answers][:5]
            assert all(a.startswith(b"HTTP/1.1 200") for a in answers if a not in limited)
            _assert_json_429(limited[0])

            # Handshakes have their own, tighter budget -- and count as requests too, so wait
            # until the request bucket the burst above drained holds them all again (on a
            # busy box the bursts ran back to back: 5 of 90 handshakes were let through).
            await asyncio.sleep((HANDSHAKE_BURST + 40) / REQUEST_RATE + 0.5)
            upgrades = await asyncio.gather(
                *(
                    _raw_request(balancer.port, _handshake(setup.doc_id, token))
                    for _ in range(HANDSHAKE_BURST + 40)
                )
            )
            refused = [u for u in upgrades if u.startswith(b"HTTP/1.1 429")]
            upgraded = [u for u in upgrades if u.startswith(b"HTTP/1.1 101")]
            assert len(upgraded) + len(refused) == len(upgrades)
            assert refused and len(upgraded) >= HANDSHAKE_BURST // 2
            _assert_json_429(refused[0])

            healthy = await tornado.httpclient.AsyncHTTPClient().fetch(
                f"http://127.0.0.1:{node.port}/readyz", raise_error=False
            )
            assert healthy.code == 200
