"""Awareness: cursors/users between real Yjs clients, removal on close, bound client ids (S2),
the reconnect nudge, query-awareness, and who-is-online over REST."""

from __future__ import annotations

import asyncio
import json

import pytest
from pycrdt import write_var_uint

from live.protocol import (
    MAX_AWARENESS_STATE_BYTES,
    AwarenessEntry,
    AwarenessMessage,
    decode_message,
    encode_awareness,
    encode_awareness_entries,
    encode_query_awareness,
)
from models.cache import Cache
from tests.realtime_support import DocSetup, RawSocket, document_with, ws_base
from tests.yjs_client import YjsNodeClients

pytestmark = pytest.mark.timeout(60)

CURSOR = {"user": {"name": "Alice", "color": "#f00"}, "cursor": {"anchor": 3, "head": 5}}


def awareness_frame(*entries: AwarenessEntry) -> bytes:
    return encode_awareness(encode_awareness_entries(entries))


def is_awareness_of(client_id: int):  # type: ignore[no-untyped-def]
    def check(message: str | bytes) -> bool:
        if not isinstance(message, bytes) or message[:1] != b"\x01":
            return False
        decoded = decode_message(message)
        return isinstance(decoded, AwarenessMessage) and any(
            e.client_id == client_id for e in decoded.entries
        )

    return check


async def test_awareness_crosses_and_is_removed_promptly_on_close(ctx, ws_port) -> None:
    setup = await document_with(ctx, "editor")
    url, token = ws_base(ws_port), setup.users["editor"].access_token
    async with YjsNodeClients() as clients:
        alice = await clients.connect("alice", url, setup.doc_id, token)
        bob = await clients.connect("bob", url, setup.doc_id, token)
        await asyncio.gather(clients.wait_synced("alice"), clients.wait_synced("bob"))

        await clients.set_awareness("alice", CURSOR)
        await clients.wait_awareness("bob", alice, CURSOR)
        await clients.set_awareness_field("bob", "user", {"name": "Bob"})
        await clients.wait_awareness("alice", bob, {"user": {"name": "Bob"}})

        # A third client joining later is sent the current states right away.
        carol = await clients.connect("carol", url, setup.doc_id, token)
        await clients.wait_awareness("carol", alice, CURSOR, timeout_s=5)
        await clients.set_awareness_field("carol", "user", {"name": "Carol"})
        await clients.wait_awareness("alice", carol, {"user": {"name": "Carol"}}, timeout_s=5)

        await clients.destroy("alice")
        # Well within the 30 s y-protocols timeout: the server removes it on close.
        await clients.wait_awareness("bob", alice, None, timeout_s=3)
        await clients.wait_awareness("carol", alice, None, timeout_s=3)


async def test_a_reconnecting_client_is_visible_again_at_once(ctx, ws_port) -> None:
    """After a clean close the server removed the state with the client's clock; the stock client
    re-sends that same clock on reconnect, which peers would ignore until its 15 s renewal. The
    server nudges it (a removal of its own id with a higher clock), and it re-announces."""
    setup = await document_with(ctx, "editor")
    url, token = ws_base(ws_port), setup.users["editor"].access_token
    async with YjsNodeClients() as clients:
        alice = await clients.connect("alice", url, setup.doc_id, token)
        await clients.connect("bob", url, setup.doc_id, token)
        await asyncio.gather(clients.wait_synced("alice"), clients.wait_synced("bob"))
        await clients.set_awareness("alice", CURSOR)
        await clients.wait_awareness("bob", alice, CURSOR)

        await clients.disconnect("alice")
        await clients.wait_awareness("bob", alice, None, timeout_s=3)
        await clients.reconnect("alice")
        await clients.wait_awareness("bob", alice, CURSOR, timeout_s=5)


async def with_cursor_seen(clients: YjsNodeClients, url: str, setup: DocSetup, name: str) -> int:
    """`name` (an editor) with CURSOR as its awareness state, seen by an "observer" editor; its
    awareness client id."""
    client_id = await clients.connect(name, url, setup.doc_id, setup.users["editor"].access_token)
    await clients.connect("observer", url, setup.doc_id, setup.users["editor"].access_token)
    await asyncio.gather(clients.wait_synced(name), clients.wait_synced("observer"))
    await clients.set_awareness(name, CURSOR)
    await clients.wait_awareness("observer", client_id, CURSOR)
    return client_id


async def test_spoofed_awareness_for_another_client_is_ignored(ctx, ws_port) -> None:
    """S2: a higher clock or a null for the victim's id, 10k entries, an oversized or non-object
    state: the victim's state persists and nobody else is affected."""
    setup = await document_with(ctx, "editor", "member")
    url = ws_base(ws_port)
    async with YjsNodeClients() as clients:
        victim = await with_cursor_seen(clients, url, setup, "victim")

        attacker = await RawSocket.open(ws_port, setup.doc_id, setup.users["member"].access_token)
        await attacker.send(awareness_frame(AwarenessEntry(victim, 1000, {"evil": True})))
        await attacker.send(awareness_frame(AwarenessEntry(victim, 2000, None)))
        many = [AwarenessEntry(5_000_000 + i, 1, {"i": i}) for i in range(10_000)]
        await attacker.send(awareness_frame(*many))
        big_state = json.dumps({"x": "y" * MAX_AWARENESS_STATE_BYTES}).encode()
        payload = b"\x01\x07\x01" + write_var_uint(len(big_state)) + big_state
        await attacker.send(b"\x01" + write_var_uint(len(payload)) + payload)
        await attacker.send(encode_awareness(b"\x01\x08\x01\x05[1,2]"))  # not an object
        # Marker: processed after everything above (one socket is handled in order).
        attacker_id = 5_000_000  # the first of the ids it managed to bind
        await attacker.send(awareness_frame(AwarenessEntry(attacker_id, 2, {"marker": 1})))
        await clients.wait_awareness("observer", attacker_id, {"marker": 1})

        states = await clients.awareness("observer")
        assert states[victim] == CURSOR
        bound = [cid for cid in states if 5_000_000 <= cid < 5_010_000]
        assert len(bound) <= 4  # a connection binds at most a few ids
        assert len(await clients.permission_denied("observer")) == 0
        await attacker.aclose()
        await clients.wait_awareness("observer", attacker_id, None, timeout_s=3)
        assert (await clients.awareness("observer"))[victim] == CURSOR


async def test_query_awareness_returns_every_state(ctx, ws_port) -> None:
    setup = await document_with(ctx, "editor")
    async with YjsNodeClients() as clients:
        alice = await clients.connect(
            "alice", ws_base(ws_port), setup.doc_id, setup.users["editor"].access_token
        )
        await clients.wait_synced("alice")
        await clients.set_awareness("alice", CURSOR)
        sock = await RawSocket.open(ws_port, setup.doc_id, setup.users["editor"].access_token)
        await sock.wait_for(is_awareness_of(alice))  # sent on connect
        start = len(sock.messages)
        await sock.send(encode_query_awareness())
        answer = decode_message(await sock.wait_for(is_awareness_of(alice), start=start))
        assert isinstance(answer, AwarenessMessage)
        assert {e.client_id: e.state for e in answer.entries}[alice] == CURSOR
        await sock.aclose()


async def test_presence_endpoint_lists_who_is_online(ctx, ws_port, api) -> None:
    setup = await document_with(ctx, "editor", "viewer", "outsider")
    path = f"/api/v1/documents/{setup.doc_id}/presence/"
    editor = setup.users["editor"]
    json_sock = await RawSocket.json(ws_port, setup.doc_id, editor.access_token)
    await json_sock.wait_type("sync")
    async with YjsNodeClients() as clients:
        await clients.connect("yjs", ws_base(ws_port), setup.doc_id, editor.access_token)
        await clients.wait_synced("yjs")
        online = await wait_presence(api, path, setup.users["viewer"].access_token, 1)
        assert online.body["document_id"] == setup.doc_id
        [user] = online.body["users"]
        assert user["user_id"] == editor.id and user["connections"] == 2
        assert user["display_name"] == "Editor"

        outsider = await api.get(path, token=setup.users["outsider"].access_token)
        assert outsider.status == 404
        assert (await api.get(path)).status == 401

    await json_sock.aclose()
    await wait_presence(api, path, editor.access_token, 0)


async def test_presence_endpoint_answers_503_when_redis_is_down(ctx, ws_port, api) -> None:
    setup = await document_with(ctx, "editor")
    presence = ctx.presence.store
    healthy = presence.cache
    presence.cache = Cache("redis://127.0.0.1:1/0", timeout_s=0.2, pool_max=2)  # nothing listens
    try:
        response = await api.get(
            f"/api/v1/documents/{setup.doc_id}/presence/", token=setup.users["editor"].access_token
        )
    finally:
        await presence.cache.close()
        presence.cache = healthy
    assert response.status == 503 and response.error_code == "presence_unavailable"


async def wait_presence(api, path: str, token: str, users: int):  # type: ignore[no-untyped-def]
    """Presence is written in the background: poll the endpoint until it shows `users` users."""
    deadline = asyncio.get_running_loop().time() + 5
    while True:
        response = await api.get(path, token=token)
        assert response.status == 200, response.body
        if len(response.body["users"]) == users:
            return response
        assert asyncio.get_running_loop().time() < deadline, response.body
        await asyncio.sleep(0.05)


def test_awareness_frame_client_ids_reads_ids_without_the_states() -> None:
    from live.protocol import awareness_frame_client_ids

    frame = awareness_frame(AwarenessEntry(7, 3, CURSOR), AwarenessEntry(9, 1, None))
    assert awareness_frame_client_ids(frame) == [7, 9]
    # A state that is not JSON is skipped, not parsed (the full decode is what rejects it).
    assert awareness_frame_client_ids(encode_awareness(b"\x01\x07\x01\x03{{{")) == [7]
    for bad in (
        frame[:-1],  # truncated
        frame + b"\x00",  # trailing bytes
        encode_awareness(b"\x05\x07"),  # a count the bytes cannot hold
        b"\x00\x00",  # not an awareness frame
        b"\x01" + write_var_uint(10) + b"\x01\x07\x01" + write_var_uint(10**6) + b"xxxx",
    ):
        assert awareness_frame_client_ids(bad) is None, bad


def test_only_states_held_by_other_local_connections_count_as_echoes() -> None:
    from live.awareness import AwarenessRegistry

    registry = AwarenessRegistry("node-a")
    registry.apply_local("c1", "u1", [AwarenessEntry(7, 1, CURSOR)], 0.0)
    registry.apply_local("c2", "u2", [AwarenessEntry(9, 1, CURSOR)], 0.0)
    assert registry.held_by_others("c2", [7])
    assert not registry.held_by_others("c1", [7])  # its own state
    assert not registry.held_by_others("c2", [7, 9])  # one of them is its own
    assert not registry.held_by_others("c2", [8])  # unknown id: it may claim it
    assert not registry.held_by_others("c2", [])
    registry.apply_local("c1", "u1", [AwarenessEntry(7, 2, None)], 0.0)
    assert not registry.held_by_others("c2", [7])  # no live state: the full rules decide


async def test_stock_providers_echo_of_other_states_changes_nothing(ctx, ws_port) -> None:
    """What a stock provider sends back for every awareness update it receives -- others' states,
    here with any clock and even a state that is not JSON -- is ignored: no change, no error."""
    setup = await document_with(ctx, "editor", "member")
    url = ws_base(ws_port)
    async with YjsNodeClients() as clients:
        alice = await with_cursor_seen(clients, url, setup, "alice")

        echoer = await RawSocket.open(ws_port, setup.doc_id, setup.users["member"].access_token)
        await echoer.send(awareness_frame(AwarenessEntry(alice, 10**6, {"evil": True})))
        clock = write_var_uint(10**6 + 1)
        await echoer.send(encode_awareness(b"\x01" + write_var_uint(alice) + clock + b"\x03{{{"))
        marker_id = 6_000_000
        await echoer.send(awareness_frame(AwarenessEntry(marker_id, 1, {"marker": 1})))
        await clients.wait_awareness("observer", marker_id, {"marker": 1})
        assert (await clients.awareness("observer"))[alice] == CURSOR
        assert len(await clients.permission_denied("observer")) == 0
        await echoer.aclose()


async def test_awareness_changes_of_one_loop_turn_go_out_as_one_frame(ctx, ws_port) -> None:
    """Renewals that arrive together (providers that connected together renew together) are sent
    to every peer in one frame, entries in order -- not one frame per renewal per peer."""
    setup = await document_with(ctx, "editor")
    token = setup.users["editor"].access_token
    sockets = [await RawSocket.open(ws_port, setup.doc_id, token) for _ in range(3)]
    for sock in sockets:  # its sync step 1 is sent once it joined the room
        await sock.wait_for(lambda message: message[:2] == b"\x00\x00")
    room = ctx.rooms.rooms[setup.doc_id]
    assert len(room.peers) == 3
    first, second = list(room.peers.values())[:2]
    starts = [len(sock.messages) for sock in sockets]
    room.apply_awareness(first, [AwarenessEntry(8_000_001, 1, {"n": 1})])
    room.apply_awareness(second, [AwarenessEntry(8_000_002, 1, {"n": 2})])
    room.apply_awareness(first, [AwarenessEntry(8_000_001, 2, {"n": 3})])
    for sock, start in zip(sockets, starts, strict=True):
        raw = await sock.wait_for(is_awareness_of(8_000_002), start=start)
        frame = decode_message(raw)
        assert isinstance(frame, AwarenessMessage)
        assert [(e.client_id, e.clock, e.state) for e in frame.entries] == [
            (8_000_001, 1, {"n": 1}),
            (8_000_002, 1, {"n": 2}),
            (8_000_001, 2, {"n": 3}),
        ]
        others = [
            decode_message(m)
            for m in sock.messages[start:]
            if m != raw and is_awareness_of(8_000_001)(m)
        ]
        assert not others, others
    for sock in sockets:
        await sock.aclose()


async def test_renewals_wait_for_the_others_of_their_second(ctx, ws_port, monkeypatch) -> None:
    """A renewal (same state, next clock) only keeps a state alive: it goes out batched with the
    other renewals of its window, after changes made meanwhile -- one frame, not one per renewal."""
    monkeypatch.setattr("live.room.RENEWAL_BATCH_S", 0.3)
    setup = await document_with(ctx, "editor")
    token = setup.users["editor"].access_token
    sockets = [await RawSocket.open(ws_port, setup.doc_id, token) for _ in range(3)]
    for sock in sockets:
        await sock.wait_for(lambda message: message[:2] == b"\x00\x00")
    room = ctx.rooms.rooms[setup.doc_id]
    first, second = list(room.peers.values())[:2]
    room.apply_awareness(first, [AwarenessEntry(8_000_001, 1, {"n": 1})])
    room.apply_awareness(second, [AwarenessEntry(8_000_002, 1, {"n": 2})])
    observer = sockets[2]
    await observer.wait_for(is_awareness_of(8_000_002))
    start = len(observer.messages)
    room.apply_awareness(first, [AwarenessEntry(8_000_001, 2, {"n": 1})])  # renewals
    room.apply_awareness(second, [AwarenessEntry(8_000_002, 2, {"n": 2})])
    await asyncio.sleep(0)
    room.apply_awareness(first, [AwarenessEntry(8_000_003, 1, {"n": 3})])  # a change
    renewed = await observer.wait_for(is_awareness_of(8_000_002), start=start)
    frames = observer.messages[start:]
    changed = next(m for m in frames if is_awareness_of(8_000_003)(m))
    assert frames.index(changed) < frames.index(renewed)
    decoded = decode_message(renewed)
    assert isinstance(decoded, AwarenessMessage)
    assert [(e.client_id, e.clock) for e in decoded.entries] == [(8_000_001, 2), (8_000_002, 2)]
    for sock in sockets:
        await sock.aclose()
