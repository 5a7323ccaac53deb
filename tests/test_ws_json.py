"""The JSON envelope on text frames: acks with versions, duplicates (R13 a/b/d), `?since=`
catch-up, presence/cursor/typing, and JSON + binary clients on one document."""

from __future__ import annotations

import asyncio

import pycrdt
import pytest

from bus.jetstream import DOCS_STREAM, docs_stream_config
from models.repo import doc_snapshots
from tests.realtime_support import (
    RawSocket,
    document_with,
    text_of,
    text_update,
    ws_base,
)
from tests.yjs_client import YjsNodeClients

pytestmark = pytest.mark.timeout(60)


def apply_operations(doc: pycrdt.Doc, messages: list[dict]) -> None:
    """What a JSON client does with what it receives."""
    for message in messages:
        if message["type"] == "sync":
            doc.apply_update(bytes.fromhex(message["state"]))
        elif message["type"] == "operation":
            doc.apply_update(bytes.fromhex(message["data"]["operation"]["payload"]))
        elif message["type"] == "operations":
            for item in message["operations"]:
                doc.apply_update(bytes.fromhex(item["operation"]["payload"]))


async def test_json_and_binary_clients_converge(ctx, ws_port) -> None:
    setup = await document_with(ctx, "editor")
    token = setup.users["editor"].access_token
    sock = await RawSocket.json(ws_port, setup.doc_id, token)
    sync = await sock.wait_type("sync")
    assert sync["version"] == 0 and text_of(bytes.fromhex(sync["state"])) == ""
    mine = pycrdt.Doc()
    async with YjsNodeClients() as clients:
        await clients.connect("yjs", ws_base(ws_port), setup.doc_id, token)
        await clients.wait_synced("yjs")

        await sock.operation("op-1", text_update(mine, "from json. "))
        ack = await sock.ack("op-1")
        assert ack == {"type": "ack", "id": "op-1", "version": ack["version"], "duplicate": False}
        assert ack["version"] > 0
        await clients.wait_json("yjs", {"text": "from json. "}, roots={"text": "text"})

        await clients.insert_text("yjs", 11, "from yjs.")
        operation = await sock.wait_type("operation")
        assert operation["version"] > ack["version"]
        assert operation["user_id"] == setup.users["editor"].id
        mine.apply_update(bytes.fromhex(operation["data"]["operation"]["payload"]))
        assert str(mine.get("text", type=pycrdt.Text)) == "from json. from yjs."
    await sock.aclose()


async def test_duplicate_message_id_is_acked_again_and_applied_once(ctx, ws_port) -> None:
    """R13(a): within JetStream's duplicate window; R13(b): after a purge forgot the id."""
    setup = await document_with(ctx, "editor")
    token = setup.users["editor"].access_token
    doc_log = ctx.doc_log
    sock = await RawSocket.json(ws_port, setup.doc_id, token)
    await sock.wait_type("sync")
    source = pycrdt.Doc()
    update = text_update(source, "once")

    await sock.operation("dup", update)
    first = await sock.ack("dup")
    await sock.operation("dup", update)
    again = await sock.wait_json(lambda m: m.get("id") == "dup" and m.get("duplicate"))
    assert again["version"] == first["version"]
    assert await doc_log.last_seq(setup.doc_id) == first["version"]

    # Another user may use the same client message id: ids are scoped per user.
    await doc_log.purge_through(setup.doc_id, first["version"])
    await sock.operation("dup", update)
    after_purge = await sock.wait_json(
        lambda m: m.get("id") == "dup" and m.get("duplicate"), start=2
    )
    assert after_purge["version"] == first["version"]
    assert await doc_log.read(setup.doc_id, 0) == []  # nothing new was stored
    await sock.aclose()


async def test_a_reused_id_with_another_payload_is_refused_and_applies_nothing(
    ctx, ws_port
) -> None:
    """S23 / issue 17 item 6: same id + same payload = the original ack; same id + another
    payload = `id_reused`, nothing stored or applied -- whether the durable map or only
    JetStream's dedupe knows the id (Postgres did not record it: the row is removed here)."""
    setup = await document_with(ctx, "editor")
    doc_log = ctx.doc_log
    sock = await RawSocket.json(ws_port, setup.doc_id, setup.users["editor"].access_token)
    await sock.wait_type("sync")
    source = pycrdt.Doc()
    original = text_update(source, "first")
    await sock.operation("reused", original)
    first = await sock.ack("reused")
    assert first["type"] == "ack" and not first["duplicate"]

    await sock.operation("reused", text_update(source, " second"))
    refused = await sock.wait_json(lambda m: m.get("id") == "reused" and m["type"] == "error")
    assert refused["code"] == "id_reused"
    assert str(first["version"]) in refused["message"]

    await ctx.db.execute("DELETE FROM document_operations WHERE document_id = $1", setup.doc_id)
    start = len(sock.messages)
    await sock.operation("reused", text_update(source, " third"))
    refused = await sock.wait_json(
        lambda m: m.get("id") == "reused" and m["type"] in ("ack", "error"), start=start
    )
    assert refused["code"] == "id_reused"  # JetStream said duplicate; the payload differs

    start = len(sock.messages)
    await sock.operation("reused", original)
    same = await sock.wait_json(lambda m: m.get("id") == "reused", start=start)
    assert (same["type"], same["version"], same["duplicate"]) == ("ack", first["version"], True)

    entries = await doc_log.read(setup.doc_id, 0)
    assert [e.seq for e in entries] == [first["version"]]
    assert text_of(entries[0].update) == "first"
    await sock.aclose()


async def test_duplicate_after_the_jetstream_window_is_still_acked_once(ctx, ws_port) -> None:
    """R13(d): JetStream forgot the id (window of 1 s for this test); the durable map did not."""
    setup = await document_with(ctx, "editor")
    token = setup.users["editor"].access_token
    js = ctx.nats.jetstream
    short = docs_stream_config(ctx.settings)
    short.duplicate_window = 1.0
    await js.update_stream(short)
    try:
        sock = await RawSocket.json(ws_port, setup.doc_id, token)
        await sock.wait_type("sync")
        update = text_update(pycrdt.Doc(), "x")
        await sock.operation("late-dup", update)
        first = await sock.ack("late-dup")
        # Waiting is the point here: the window has to pass. Prove JetStream forgot the id.
        await asyncio.sleep(1.5)
        probe = await js.publish(
            f"collab.doc.{setup.doc_id}.update",
            update,
            headers={"Nats-Msg-Id": f"op:{setup.doc_id}:{setup.users['editor'].id}:late-dup"},
        )
        assert not probe.duplicate  # JetStream alone would store (and apply) it again
        await sock.operation("late-dup", update)
        again = await sock.wait_json(lambda m: m.get("id") == "late-dup" and m.get("duplicate"))
        assert again["version"] == first["version"]
        assert await ctx.doc_log.last_seq(setup.doc_id) == probe.seq
        await sock.aclose()
    finally:
        await js.update_stream(docs_stream_config(ctx.settings))
    info = await js.stream_info(DOCS_STREAM)
    assert info.config.duplicate_window == ctx.settings.duplicate_window_s


async def test_reconnect_with_since_gets_only_the_newer_operations(ctx, ws_port) -> None:
    setup = await document_with(ctx, "editor")
    token = setup.users["editor"].access_token
    writer = await RawSocket.json(ws_port, setup.doc_id, token)
    await writer.wait_type("sync")
    source = pycrdt.Doc()
    await writer.operation("a", text_update(source, "a"))
    seen = (await writer.ack("a"))["version"]

    reader = await RawSocket.json(ws_port, setup.doc_id, token)
    await reader.wait_type("sync")
    await reader.aclose()
    versions = []
    for index, chunk in enumerate(["b", "c", "d"]):
        await writer.operation(f"w{index}", text_update(source, chunk))
        versions.append((await writer.ack(f"w{index}"))["version"])

    back = await RawSocket.json(ws_port, setup.doc_id, token, query=f"since={seen}")
    catch_up = await back.wait_type("operations")
    assert not [m for m in back.json_messages() if m["type"] == "sync"]
    assert catch_up["since"] == seen and catch_up["version"] == versions[-1]
    assert [op["version"] for op in catch_up["operations"]] == versions
    mine = pycrdt.Doc()
    mine.apply_update(text_update(pycrdt.Doc(client_id=source.client_id), "a"))
    apply_operations(mine, [catch_up])
    assert str(mine.get("text", type=pycrdt.Text)) == "abcd"

    # Live operations continue after the catch-up, in order, without a gap.
    await writer.operation("e", text_update(source, "e"))
    live = await back.wait_type("operation")
    assert live["version"] > versions[-1]
    for sock in (writer, back):
        await sock.aclose()


async def test_since_older_than_the_snapshot_gets_the_full_state(ctx, ws_port) -> None:
    setup = await document_with(ctx, "editor")
    token = setup.users["editor"].access_token
    writer = await RawSocket.json(ws_port, setup.doc_id, token)
    await writer.wait_type("sync")
    source = pycrdt.Doc()
    await writer.operation("a", text_update(source, "a"))
    first = (await writer.ack("a"))["version"]
    await writer.operation("b", text_update(source, "b"))
    second = (await writer.ack("b"))["version"]
    await doc_snapshots.save_snapshot(
        ctx.db,
        setup.doc_id,
        seq=second,
        state=source.get_update(),
        state_vector=source.get_state(),
        update_count=2,
    )
    back = await RawSocket.json(ws_port, setup.doc_id, token, query=f"since={first - 1}")
    sync = await back.wait_type("sync")
    assert sync["reason"] == "since_compacted" and sync["version"] == second
    assert text_of(bytes.fromhex(sync["state"])) == "ab"
    for sock in (writer, back):
        await sock.aclose()


async def test_presence_cursor_typing_reach_json_and_yjs_clients(ctx, ws_port) -> None:
    setup = await document_with(ctx, "editor", "member")
    alice = await RawSocket.json(ws_port, setup.doc_id, setup.users["editor"].access_token)
    bob = await RawSocket.json(ws_port, setup.doc_id, setup.users["member"].access_token)
    await alice.wait_type("sync")
    await bob.wait_type("sync")
    async with YjsNodeClients() as clients:
        yjs_id = await clients.connect(
            "yjs", ws_base(ws_port), setup.doc_id, setup.users["member"].access_token
        )
        await clients.wait_synced("yjs")

        await alice.send_json({"type": "presence", "data": {"color": "#f00"}})
        joined = await bob.wait_json(
            lambda m: (
                m["type"] == "presence"
                and m["user_id"] == setup.users["editor"].id
                and (m["state"] or {}).get("color") == "#f00"
            )
        )
        alice_client = joined["client_id"]
        await alice.send_json({"type": "cursor", "data": {"anchor": 1, "head": 4}})
        cursor = await bob.wait_type("cursor")
        assert cursor["data"] == {"anchor": 1, "head": 4} and cursor["client_id"] == alice_client
        await alice.send_json({"type": "typing", "data": {"active": True}})
        typing = await bob.wait_type("typing")
        assert typing["data"] == {"active": True}

        expected = {
            "user": {"id": setup.users["editor"].id, "name": "Editor"},
            "color": "#f00",
            "cursor": {"anchor": 1, "head": 4},
            "typing": {"active": True},
        }
        await clients.wait_awareness("yjs", alice_client, expected)

        await clients.set_awareness("yjs", {"user": {"name": "Y"}, "cursor": {"anchor": 0}})
        seen = await alice.wait_json(
            lambda m: m.get("client_id") == yjs_id and "cursor" in (m.get("state") or {})
        )
        assert seen["type"] == "presence" and seen["state"]["cursor"] == {"anchor": 0}
        assert seen["user_id"] == setup.users["member"].id

        await alice.aclose()
        await clients.wait_awareness("yjs", alice_client, None)
        gone = await bob.wait_json(
            lambda m: m.get("client_id") == alice_client and m.get("state", 1) is None
        )
        assert gone["type"] == "presence"
    await bob.aclose()


@pytest.mark.parametrize(
    ("frame", "code"),
    [
        ("not json", "invalid_json"),
        ("[1, 2]", "invalid_message"),
        ('{"type": "shout"}', "unknown_type"),
        ('{"type": "operation", "id": "x"}', "validation_error"),
        (
            '{"type": "operation", "id": "x", "data": {"operation": {"type": "update",'
            ' "payload": "zz"}}}',
            "invalid_payload",
        ),
        (
            '{"type": "operation", "id": "x", "data": {"operation": {"type": "update",'
            ' "payload": "ffffffff"}}}',
            "invalid_update",
        ),
        (
            '{"type": "operation", "id": "x", "extra": 1, "data": {"operation": {"type": "update",'
            ' "payload": "0000"}}}',
            "validation_error",
        ),
        ('{"type": "presence", "data": "nope"}', "validation_error"),
    ],
)
async def test_invalid_envelopes_get_an_error_and_keep_the_connection(
    ctx, ws_port, frame, code
) -> None:
    setup = await document_with(ctx, "editor")
    sock = await RawSocket.json(ws_port, setup.doc_id, setup.users["editor"].access_token)
    await sock.wait_type("sync")
    await sock.send(frame)
    error = await sock.wait_type("error")
    assert error["code"] == code, error
    await sock.send_json({"type": "ping", "id": "still-there"})
    assert (await sock.wait_type("pong"))["id"] == "still-there"
    assert await ctx.doc_log.last_seq(setup.doc_id) == 0
    await sock.aclose()


async def test_highest_version_seen_is_a_safe_since(ctx, ws_port) -> None:
    """Broadcasts and acks each come in version order, and an ack for version N comes after every
    other client's operation below N: the highest version a client has seen is a safe `since`
    (the only versions it may see late are its own operations, whose content it has)."""
    setup = await document_with(ctx, "editor", "member")
    a = await RawSocket.json(ws_port, setup.doc_id, setup.users["editor"].access_token)
    b = await RawSocket.json(ws_port, setup.doc_id, setup.users["member"].access_token)
    await a.wait_type("sync")
    await b.wait_type("sync")
    doc_a, doc_b = pycrdt.Doc(), pycrdt.Doc()
    for i in range(15):
        await asyncio.gather(
            a.operation(f"a{i}", text_update(doc_a, "a", key="ta")),
            b.operation(f"b{i}", text_update(doc_b, "b", key="tb")),
        )
    await a.ack("a14")
    await b.ack("b14")
    for sock in (a, b):
        messages = [m for m in sock.json_messages() if m["type"] in ("operation", "ack")]
        operations = [m["version"] for m in messages if m["type"] == "operation"]
        acks = [m["version"] for m in messages if m["type"] == "ack"]
        assert operations == sorted(operations) and acks == sorted(acks)
        for index, message in enumerate(messages):
            if message["type"] == "ack":
                earlier = {m["version"] for m in messages[:index] if m["type"] == "operation"}
                assert {v for v in operations if v < message["version"]} <= earlier
        await sock.aclose()
