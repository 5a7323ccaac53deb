"""SIGTERM spreads its 1001 closes over `COLLAB_SHUTDOWN_CLOSE_SPREAD_S`, so a node's clients do
not all reconnect to the other nodes in the same instant (y-websocket retries ~100 ms after a
close, with no jitter of its own)."""

from __future__ import annotations

import asyncio
import dataclasses
import uuid

import pytest

from live.hub import close_delays
from server.runner import start_node
from tests.realtime_support import RawSocket, document_with

pytestmark = pytest.mark.timeout(60)

SOCKETS = 8
SPREAD_S = 1.5


async def close_times(sockets: list[RawSocket]) -> list[float]:
    loop = asyncio.get_running_loop()

    async def closed_at(socket: RawSocket) -> float:
        await socket.wait_closed(SPREAD_S + 10)
        return loop.time()

    return list(await asyncio.gather(*(closed_at(s) for s in sockets)))


async def test_shutdown_closes_sockets_spread_over_the_window(ctx, settings) -> None:
    setup = await document_with(ctx, "editor")
    token = setup.users["editor"].access_token
    node = await start_node(
        dataclasses.replace(
            settings,
            node_id=f"spread-{uuid.uuid4().hex[:6]}",
            port=0,
            shutdown_close_spread_s=SPREAD_S,
        )
    )
    sockets = [await RawSocket.json(node.port, setup.doc_id, token) for _ in range(SOCKETS)]
    await asyncio.gather(*(s.wait_type("sync") for s in sockets))
    closing = asyncio.ensure_future(close_times(sockets))
    await node.stop()
    times = await closing
    assert {s.close_code for s in sockets} == {1001}
    # Uniform over 1.5 s: 8 closes within 0.3 s of each other would be a 1-in-10^5 event.
    assert max(times) - min(times) >= 0.3, times
    assert max(times) - min(times) <= SPREAD_S + 1.0, times


def test_no_spread_closes_everything_at_once() -> None:
    assert close_delays(3, 0.0) == [0.0, 0.0, 0.0]
    delays = close_delays(1000, 2.0)
    assert all(0 <= d <= 2.0 for d in delays) and max(delays) - min(delays) > 1.5
