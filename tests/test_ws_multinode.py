"""Two nodes on the same NATS and Postgres, clients split across them: edits and awareness cross
nodes and converge; a node shutting down sends its clients elsewhere with 1001 (R19)."""

from __future__ import annotations

import asyncio
import dataclasses
import uuid

import pycrdt
import pytest

from core.yjs_state import decode_state_vector
from server.runner import start_node
from tests.realtime_support import (
    RawSocket,
    converged,
    document_with,
    second_node,
    text_update,
    ws_base,
)
from tests.yjs_client import YjsNodeClients

pytestmark = pytest.mark.timeout(90)


async def test_edits_and_awareness_cross_nodes_and_converge(ctx, settings, ws_port) -> None:
    setup = await document_with(ctx, "editor", "member")
    token = setup.users["editor"].access_token
    async with second_node(settings) as node2, YjsNodeClients() as clients:
        urls = {"a": ws_base(ws_port), "b": ws_base(node2.port), "c": ws_base(ws_port)}
        ids = {n: await clients.connect(n, u, setup.doc_id, token) for n, u in urls.items()}
        await asyncio.gather(*(clients.wait_synced(n) for n in urls))

        await asyncio.gather(
            *(clients.random_edits(n, count=120, seed=10 + i) for i, n in enumerate(urls))
        )
        states = await converged(clients, ids, list(urls))
        assert len({s["state_hash"] for s in states}) == 1

        # Cross-node consistency: both rooms hold the same history at the same version.
        room1 = ctx.rooms.rooms[setup.doc_id]
        room2 = node2.ctx.rooms.rooms[setup.doc_id]
        last = await ctx.doc_log.last_seq(setup.doc_id)
        assert await room1.wait_applied(last, 5) and await room2.wait_applied(last, 5)
        clocks = [decode_state_vector(pycrdt.get_state(r.full_state())) for r in (room1, room2)]
        assert clocks[0] == clocks[1]
        assert {str(c): k for c, k in clocks[0].items()} == states[0]["state_vector_map"]

        cursor = {"user": {"name": "A"}, "cursor": {"anchor": 1, "head": 2}}
        await clients.set_awareness("a", cursor)
        await clients.wait_awareness("b", ids["a"], cursor)
        await clients.set_awareness("b", {"user": {"name": "B"}})
        await clients.wait_awareness("a", ids["b"], {"user": {"name": "B"}})
        await clients.wait_awareness("c", ids["b"], {"user": {"name": "B"}})

        await clients.destroy("b")  # clean close on node 2: removed everywhere at once
        await clients.wait_awareness("a", ids["b"], None, timeout_s=3)
        await clients.wait_awareness("c", ids["b"], None, timeout_s=3)

        # A late joiner on node 2 sees the other node's client's awareness too (query on load).
        await clients.connect("late", ws_base(node2.port), setup.doc_id, token)
        await clients.wait_synced("late")
        await clients.wait_awareness("late", ids["a"], cursor, timeout_s=5)


async def test_json_on_one_node_binary_on_the_other(ctx, settings, ws_port) -> None:
    setup = await document_with(ctx, "editor")
    token = setup.users["editor"].access_token
    async with second_node(settings) as node2, YjsNodeClients() as clients:
        yjs_id = await clients.connect("yjs", ws_base(ws_port), setup.doc_id, token)
        await clients.wait_synced("yjs")
        sock = await RawSocket.json(node2.port, setup.doc_id, token)
        await sock.wait_type("sync")

        mine = pycrdt.Doc()
        await sock.operation("j1", text_update(mine, "json@n2 "))
        ack = await sock.ack("j1")
        assert ack["type"] == "ack"
        await clients.wait_json("yjs", {"text": "json@n2 "}, roots={"text": "text"})

        await clients.insert_text("yjs", 8, "yjs@n1")
        operation = await sock.wait_type("operation")
        assert operation["version"] > ack["version"]
        mine.apply_update(bytes.fromhex(operation["data"]["operation"]["payload"]))
        assert str(mine.get("text", type=pycrdt.Text)) == "json@n2 yjs@n1"

        await sock.send_json({"type": "cursor", "data": {"index": 3}})
        [session] = node2.ctx.rooms.sessions.values()
        expected = {
            "user": {"id": setup.users["editor"].id, "name": "Editor"},
            "cursor": {"index": 3},
        }
        await clients.wait_awareness("yjs", session.presence_id, expected)
        await clients.set_awareness("yjs", {"user": {"name": "Y"}})
        seen = await sock.wait_json(lambda m: m.get("client_id") == yjs_id and bool(m.get("state")))
        assert seen["state"] == {"user": {"name": "Y"}}
        await sock.aclose()


async def test_a_stopping_node_closes_with_going_away_and_clients_resync(
    ctx, settings, ws_port
) -> None:
    """R19: SIGTERM path (node.stop()): sockets get 1001, in-flight publishes finish, and the
    clients' edits survive on the other node."""
    setup = await document_with(ctx, "editor")
    token = setup.users["editor"].access_token
    async with YjsNodeClients() as clients:
        node2 = await start_node(
            dataclasses.replace(settings, node_id=f"n2-{uuid.uuid4().hex[:6]}", port=0)
        )
        await clients.connect("leaving", ws_base(node2.port), setup.doc_id, token)
        await clients.connect("staying", ws_base(ws_port), setup.doc_id, token)
        await asyncio.gather(clients.wait_synced("leaving"), clients.wait_synced("staying"))
        await clients.insert_text("leaving", 0, "before shutdown")
        await clients.wait_json("staying", {"text": "before shutdown"}, roots={"text": "text"})

        await node2.stop()
        [close] = await clients.wait_close("leaving")
        assert close["code"] == 1001
        status = await clients.sync_status("leaving")
        assert status["should_connect"]  # 1001 is not a 44xx: the provider keeps trying
        await clients.wait_json("staying", {"text": "before shutdown"}, roots={"text": "text"})
