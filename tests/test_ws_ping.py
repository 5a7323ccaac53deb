"""Keep-alive pings (live/pinger.py, one task per node instead of Tornado's task per socket): a
socket is pinged once per interval; one whose peer stops answering is closed with 1000 "ping timed
out" once its next ping is due; one that answers stays open. Real node, real Tornado clients; the
silent one has its automatic pong switched off."""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import Callable

import pytest

from tests.realtime_support import RawSocket, document_with, second_node

pytestmark = pytest.mark.timeout(60)

#: Short, so the test takes seconds; the default is 25 s.
INTERVAL_S = 0.5


async def test_sockets_are_pinged_and_a_silent_one_is_closed(ctx, settings) -> None:
    setup = await document_with(ctx, "editor")
    token = setup.users["editor"].access_token
    fast = dataclasses.replace(settings, websocket_ping_interval_s=INTERVAL_S)
    async with second_node(fast) as node:
        answering = await RawSocket.open(node.port, setup.doc_id, token)
        silent = await RawSocket.open(node.port, setup.doc_id, token)
        pings: dict[str, int] = {"answering": 0, "silent": 0}
        for name, sock in (("answering", answering), ("silent", silent)):
            sock.conn.on_ping = lambda _data, name=name: pings.__setitem__(name, pings[name] + 1)
        assert silent.conn.protocol is not None
        silent.conn.protocol._send_pong = lambda _data: None  # type: ignore[method-assign]

        # Pinged at the first interval, no pong, closed when the second ping is due.
        await asyncio.wait_for(silent.closed.wait(), 6 * INTERVAL_S)
        assert (silent.close_code, silent.close_reason) == (1000, "ping timed out")
        assert pings["silent"] >= 1

        # The answering one keeps being pinged and stays open.
        await _until(lambda: pings["answering"] >= 3, 10 * INTERVAL_S)
        assert not answering.closed.is_set()
        assert len(node.ctx.pinger) == 1  # the closed socket left the pinger
        await answering.aclose()
        await _until(lambda: len(node.ctx.pinger) == 0, 5)


async def _until(condition: Callable[[], bool], timeout_s: float) -> None:
    """Poll in-process bookkeeping (ping counts, the pinger's sockets): nothing to wait on."""
    deadline = asyncio.get_running_loop().time() + timeout_s
    while not condition():
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(0.05)
