"""Flood control never drops an update a client believes delivered (issue 17 item 12, S5).

A stock y-websocket client cannot tell a refused update from a delivered one: the provider sends
and forgets, a permission-denied frame is only logged, and 44xx closes stop it from reconnecting.
So the server throttles by back-pressure instead: while a socket is over its token bucket the
server stops reading it and TCP slows the client down; a run of queued updates is merged into one
publish. The property tested here, with the default settings: a client that writes 10,000 updates
as fast as it can ends converged with its peers and with a fresh joiner, its socket never closed.
"""

from __future__ import annotations

import asyncio

import pytest

from tests.realtime_support import document_with, ws_base
from tests.yjs_client import YjsNodeClients

pytestmark = pytest.mark.timeout(180)

UPDATES = 10_000
CONVERGE_S = 90.0


async def test_10000_updates_as_fast_as_possible_converge_with_default_settings(
    ctx, ws_port
) -> None:
    setup = await document_with(ctx, "editor", "member")
    url = ws_base(ws_port)
    async with YjsNodeClients() as clients:
        writer = await clients.connect(
            "writer", url, setup.doc_id, setup.users["editor"].access_token
        )
        await clients.connect("peer", url, setup.doc_id, setup.users["member"].access_token)
        await asyncio.gather(clients.wait_synced("writer"), clients.wait_synced("peer"))

        await clients.burst_edits("writer", UPDATES)
        written = await clients.state("writer")
        assert len(written["json"]["text"]) == UPDATES
        target = {writer: written["state_vector_map"][str(writer)]}

        seen = await clients.wait_state_vector("peer", target, CONVERGE_S)
        assert seen["state_hash"] == written["state_hash"]
        await clients.connect("late", url, setup.doc_id, setup.users["member"].access_token)
        late = await clients.wait_state_vector("late", target, CONVERGE_S)
        assert late["state_hash"] == written["state_hash"]
        # Throttled, never refused: no permission-denied frame, no close.
        assert await clients.permission_denied("writer") == []
        assert await clients.close_codes("writer") == []
