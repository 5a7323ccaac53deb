"""Proves the real-Yjs-client harness against the reference y-websocket server.

Our own server is built in parallel; these tests point the same harness at the reference
``@y/websocket-server`` so that a failure later, against our server, is about the server and not
about the harness. They also cross-check the codec with real client traffic: every update a stock
client produces must pass ``live.protocol`` validation and give the same content in pycrdt.
"""

from __future__ import annotations

import asyncio
import base64
import json

import pycrdt
import pytest
from pycrdt import Array, Doc, Map, Text

from live.protocol import SyncStep2, decode_message, encode_sync_step2
from tests.realtime_support import converged
from tests.yjs_client import (
    JS_DIR,
    HarnessError,
    ReferenceYjsServer,
    YjsNodeClients,
    ensure_node_modules,
)

pytestmark = pytest.mark.timeout(60)

CONVERGE_TIMEOUT_S = 15.0


async def converged_states(clients: YjsNodeClients, editors: dict[str, int]) -> list[dict]:
    """Wait until every client has every editor's last update (`realtime_support.converged`: a
    marker insert per editor, since a trailing deletion moves no clock -- covering the editors'
    clocks alone let this test compare a state a deletion had not reached yet); their states."""
    return await converged(clients, editors, list(editors))


async def test_concurrent_edits_of_two_clients_converge(io_loop: object) -> None:
    async with ReferenceYjsServer() as server, YjsNodeClients() as clients:
        alice = await clients.connect("alice", server.url, "doc-converge", token="t-alice")
        bob = await clients.connect("bob", server.url, "doc-converge", token="t-bob")
        await asyncio.gather(clients.wait_synced("alice"), clients.wait_synced("bob"))

        await asyncio.gather(
            clients.random_edits("alice", count=200, seed=1),
            clients.random_edits("bob", count=200, seed=2),
        )

        alice_state, bob_state = await converged_states(clients, {"alice": alice, "bob": bob})
        assert alice_state["state_hash"] == bob_state["state_hash"]
        assert alice_state["json"] == bob_state["json"]
        assert alice_state["json"]["text"]  # the seeds do produce content


async def test_awareness_crosses_and_disappears_when_a_client_leaves(io_loop: object) -> None:
    async with ReferenceYjsServer() as server, YjsNodeClients() as clients:
        alice = await clients.connect("alice", server.url, "doc-awareness")
        bob = await clients.connect("bob", server.url, "doc-awareness")
        await asyncio.gather(clients.wait_synced("alice"), clients.wait_synced("bob"))

        cursor = {"user": {"name": "Alice", "color": "#f00"}, "cursor": {"anchor": 3, "head": 5}}
        await clients.set_awareness("alice", cursor)
        await clients.wait_awareness("bob", alice, cursor)
        await clients.set_awareness_field("bob", "user", {"name": "Bob"})
        await clients.wait_awareness("alice", bob, {"user": {"name": "Bob"}})

        await clients.destroy("alice")  # closes the socket; the server drops alice's state
        await clients.wait_awareness("bob", alice, None)
        assert alice not in await clients.awareness("bob")


async def test_late_joiner_receives_the_full_state(io_loop: object) -> None:
    async with ReferenceYjsServer() as server, YjsNodeClients() as clients:
        await clients.connect("alice", server.url, "doc-late")
        await clients.wait_synced("alice")
        await clients.insert_text("alice", 0, "héllo 👋")
        await clients.map_set("alice", "title", "Spec")
        await clients.array_push("alice", [1, {"two": 2}])
        await clients.random_edits("alice", count=50, seed=3)
        alice_state = await clients.state("alice")

        await clients.connect("carol", server.url, "doc-late")
        await clients.wait_synced("carol")
        carol_state = await clients.wait_json("carol", alice_state["json"], CONVERGE_TIMEOUT_S)
        assert carol_state["state_hash"] == alice_state["state_hash"]


async def test_offline_edits_merge_after_reconnect(io_loop: object) -> None:
    async with ReferenceYjsServer() as server, YjsNodeClients() as clients:
        alice = await clients.connect("alice", server.url, "doc-offline")
        bob = await clients.connect("bob", server.url, "doc-offline")
        await asyncio.gather(clients.wait_synced("alice"), clients.wait_synced("bob"))

        await clients.disconnect("bob")
        assert (await clients.sync_status("bob"))["wsconnected"] is False
        await clients.insert_text("bob", 0, "offline ")
        await clients.insert_text("alice", 0, "online ")
        await clients.reconnect("bob")
        await clients.wait_synced("bob")

        alice_state, bob_state = await converged_states(clients, {"alice": alice, "bob": bob})
        assert alice_state["state_hash"] == bob_state["state_hash"]
        assert sorted(alice_state["json"]["text"].split()) == ["offline", "online"]
        assert {"code": None, "reason": "closed locally"} in await clients.close_codes("bob")


async def test_server_going_away_is_reported_as_a_close_event(io_loop: object) -> None:
    async with YjsNodeClients() as clients:
        async with ReferenceYjsServer() as server:
            await clients.connect("alice", server.url, "doc-close")
            await clients.wait_synced("alice")
        closes = await clients.wait_close("alice", timeout_s=CONVERGE_TIMEOUT_S)
        assert closes[0]["code"] == 1006  # abnormal closure: the server process is gone
        event = await clients.wait_event(
            lambda event: event["event"] == "close" and event["name"] == "alice", 1.0
        )
        assert event["code"] == 1006
        assert (await clients.sync_status("alice"))["synced"] is False


async def test_client_updates_pass_the_codec_and_load_in_pycrdt(io_loop: object) -> None:
    """Cross-check with real traffic: a stock client's state is valid and means the same in pycrdt."""
    async with ReferenceYjsServer() as server, YjsNodeClients() as clients:
        await clients.connect("alice", server.url, "doc-pycrdt")
        await clients.wait_synced("alice")
        await clients.random_edits("alice", count=300, seed=4)
        state = await clients.state("alice")

    update = base64.b64decode(state["update"])
    message = decode_message(encode_sync_step2(update))  # full validation, as the server will do
    assert isinstance(message, SyncStep2)
    doc = Doc()
    doc.apply_update(message.update)
    assert str(doc.get("text", type=Text)) == state["json"]["text"]
    assert doc.get("map", type=Map).to_py() == state["json"]["map"]
    assert doc.get("array", type=Array).to_py() == state["json"]["array"]
    assert doc.get_state() == base64.b64decode(state["state_vector"])
    assert pycrdt.get_state(update) == doc.get_state()


async def test_pycrdt_update_applied_by_a_stock_client_converges(io_loop: object) -> None:
    """The reverse direction: what a pycrdt room broadcasts is understood by Yjs."""
    doc = Doc()
    doc.get("text", type=Text).insert(0, "from pycrdt ✓")
    doc.get("map", type=Map)["k"] = {"nested": [1, None]}
    async with ReferenceYjsServer() as server, YjsNodeClients() as clients:
        await clients.connect("alice", server.url, "doc-reverse")
        await clients.connect("bob", server.url, "doc-reverse")
        await asyncio.gather(clients.wait_synced("alice"), clients.wait_synced("bob"))
        await clients.apply_update("alice", doc.get_update())
        expected = {"text": "from pycrdt ✓", "map": {"k": {"nested": [1, None]}}, "array": []}
        await clients.wait_json("bob", expected, CONVERGE_TIMEOUT_S)


async def test_command_errors_are_reported_not_hung(io_loop: object) -> None:
    async with YjsNodeClients() as clients:
        with pytest.raises(HarnessError, match="no client named"):
            await clients.insert_text("nobody", 0, "x")
        with pytest.raises(HarnessError, match="unknown command"):
            await clients.request("no_such_command")
        await clients.connect("alice", "ws://127.0.0.1:9/ws/documents", "doc-unreachable")
        with pytest.raises(HarnessError, match="timeout"):
            await clients.wait_synced("alice", timeout_s=0.5)


async def test_checked_in_protocol_fixtures_match_what_node_writes(io_loop: object) -> None:
    """tests/js/fixtures/protocol_frames.json must be regenerated when the JS libraries change."""
    await asyncio.to_thread(ensure_node_modules)
    process = await asyncio.create_subprocess_exec(
        "node",
        "make_protocol_fixtures.mjs",
        cwd=JS_DIR,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    stdout, stderr = await process.communicate()
    assert process.returncode == 0, stderr.decode()
    checked_in = json.loads((JS_DIR / "fixtures" / "protocol_frames.json").read_text())
    assert json.loads(stdout) == checked_in, (
        "regenerate: cd tests/js && node make_protocol_fixtures.mjs > fixtures/protocol_frames.json"
    )
