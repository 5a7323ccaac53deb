"""Hostile and broken input on the document socket: the document and the log stay untouched, the
sender gets an error or a close code, everyone else carries on (S1, S4, S5, S7, R18, R23, and the
per-document size budget).

Fuzzing (S1) drives a session's message handler directly against a real room, real JetStream and
real Postgres. 1000 examples by default; RELIABILITY.md asks for >= 10**5 per
message type, which is what

    COLLAB_ROOM_FUZZ_EXAMPLES=100000 python -m pytest -q tests/test_ws_bad_input.py -k fuzz

runs (minutes). The codec itself is fuzzed much harder in tests/test_protocol_fuzz.py.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import dataclasses
import os
import socket

import pycrdt
import pytest
import tornado.websocket
from hypothesis import HealthCheck, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st

from live.protocol import (
    EMPTY_UPDATE,
    ProtocolError,
    decode_message,
    encode_sync_step1,
    encode_update,
)
from live.session import Identity, YjsSession
from services.policy import Access, ResourceRole, WorkspaceRole
from tests.realtime_support import (
    RawSocket,
    document_with,
    second_node,
    text_of,
    text_update,
    ws_base,
)
from tests.test_protocol_fuzz import (
    awareness_like,
    framed_garbage,
    huge_length_prefix,
    mutated,
    sample_updates,
)
from tests.yjs_client import YjsNodeClients

pytestmark = pytest.mark.timeout(120)

FUZZ_ROOM_EXAMPLES = int(os.environ.get("COLLAB_ROOM_FUZZ_EXAMPLES", "1000"))


class RecordingTransport:
    def __init__(self) -> None:
        self.sent: list[bytes | str] = []
        self.closes: list[tuple[int, str]] = []

    def send(self, message: bytes | str) -> None:
        self.sent.append(message)

    def unsent_bytes(self) -> int:
        return 0

    def close(self, code: int, reason: str) -> None:
        self.closes.append((code, reason))


hostile_frames = st.one_of(
    st.binary(max_size=256),
    framed_garbage(),
    huge_length_prefix(),
    awareness_like(),
    mutated([encode_update(u) for u in sample_updates()]),
    st.builds(lambda n, tail: b"\xff" * n + tail, st.integers(1, 16), st.binary(max_size=8)),
    st.builds(lambda t, rest: bytes([t]) + rest, st.integers(4, 255), st.binary(max_size=32)),
    st.text(max_size=64),
)


async def test_fuzzed_frames_leave_the_document_and_the_log_untouched(ctx, ws_port) -> None:
    """S1: random frames against an editor's session; the stream's last seq and the room state
    stay the same, nothing escapes the handler, and a peer keeps working."""
    setup = await document_with(ctx, "editor")
    rooms = ctx.rooms
    doc_log = ctx.doc_log
    source = pycrdt.Doc()
    seed = RawSocket.json  # a real edit first, so there is state to protect
    writer = await seed(ws_port, setup.doc_id, setup.users["editor"].access_token)
    await writer.wait_type("sync")
    await writer.operation("seed", text_update(source, "protected"))
    await writer.ack("seed")

    room = await rooms.acquire(setup.doc_id)
    access = Access(setup.workspace_id, WorkspaceRole.MEMBER, ResourceRole.EDITOR)
    identity = Identity(setup.users["editor"].id, "Editor", "f", "t", 2**40)
    loop = asyncio.get_running_loop()
    counts = {"examples": 0, "valid_updates": 0}

    async def handle(frame: bytes | str) -> tuple[int, bytes, int, bytes]:
        """One frame through a fresh editor session: (seq, state) before and after."""
        session = YjsSession(
            conn_id=f"fuzz-{counts['examples']}",
            doc_id=setup.doc_id,
            identity=identity,
            access=access,
            transport=RecordingTransport(),
            deps=rooms.deps(),
        )
        session.room = room
        seq, state = await doc_log.last_seq(setup.doc_id), room.full_state()
        await session.handle(frame)
        room.leave(session)
        return seq, state, await doc_log.last_seq(setup.doc_id), room.full_state()

    def run_one(frame: bytes | str) -> None:
        counts["examples"] += 1
        before_seq, before_state, seq, state = asyncio.run_coroutine_threadsafe(
            handle(frame), loop
        ).result(timeout=10)
        if carries_update(frame):
            counts["valid_updates"] += 1  # a well-formed update from an editor may be stored
            return
        assert (seq, state) == (before_seq, before_state), frame

    @hypothesis_settings(
        max_examples=FUZZ_ROOM_EXAMPLES,
        deadline=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
        database=None,
    )
    @given(hostile_frames)
    def fuzz(frame: bytes | str) -> None:
        run_one(frame)

    await asyncio.to_thread(fuzz)

    assert counts["examples"] >= min(FUZZ_ROOM_EXAMPLES, 100)
    assert counts["valid_updates"] < counts["examples"] / 10  # the fuzz is mostly hostile
    await writer.operation("after", text_update(source, "!"))
    assert (await writer.ack("after"))["type"] == "ack"
    await writer.aclose()


def carries_update(frame: bytes | str) -> bool:
    """A well-formed SyncStep2/Update with content (legitimately published for an editor)."""
    if isinstance(frame, str):
        return False
    try:
        message = decode_message(frame)
    except ProtocolError:
        return False
    update = getattr(message, "update", EMPTY_UPDATE)
    return update != EMPTY_UPDATE


async def test_malformed_frames_get_an_error_and_too_many_close_4400(ctx, ws_port) -> None:
    setup = await document_with(ctx, "editor")
    doc_log = ctx.doc_log
    sock = await RawSocket.open(ws_port, setup.doc_id, setup.users["editor"].access_token)
    await sock.wait_for(lambda m: isinstance(m, bytes))
    for frame in (b"", b"\x07", b"\x00\x01\x05\xff\xff\xff\xff\xff", b"\x00\x02\x03\x01\x02\x03"):
        start = len(sock.messages)
        await sock.send(frame)
        refusal = await sock.wait_for(
            lambda m: isinstance(m, bytes) and m[:1] == b"\x02", start=start
        )
        assert b"malformed" in refusal
    await sock.send("text on a binary connection")
    await sock.wait_for(lambda m: isinstance(m, bytes) and b"format=json" in m)
    for _ in range(25):
        if sock.closed.is_set():
            break
        with contextlib.suppress(tornado.websocket.WebSocketClosedError):
            await sock.send(b"\x00\x09")
    assert await sock.wait_closed() == 4400
    assert await doc_log.last_seq(setup.doc_id) == 0


async def test_oversized_frames_are_closed_with_1009_before_crdt_code(ctx, ws_port) -> None:
    """S4 (10 MB frame) and R23 (a 2 MB update, e.g. a SyncStep2 after long offline editing,
    from a real client): 1009 at the configured limit, the node keeps serving, the document and
    the log are unchanged and the client keeps its local state."""
    setup = await document_with(ctx, "editor")
    token = setup.users["editor"].access_token
    doc_log = ctx.doc_log
    assert ctx.settings.max_frame_bytes < 1024 * 1024  # aligned below NATS max_payload

    huge = await RawSocket.open(ws_port, setup.doc_id, token)
    await huge.wait_for(lambda m: isinstance(m, bytes))
    with contextlib.suppress(tornado.websocket.WebSocketClosedError):  # closed mid-frame
        await huge.send(b"\x00\x02" + b"\x00" * (10 * 1024 * 1024))
    # The close frame arrives even though the client was still writing (a lingering close, not a
    # reset: handlers/ws_lingering.py).
    assert await huge.wait_closed() == 1009

    async with YjsNodeClients() as clients:
        for name in ("offline", "peer", "observer"):
            await clients.connect(name, ws_base(ws_port), setup.doc_id, token)
        await asyncio.gather(*(clients.wait_synced(n) for n in ("offline", "peer", "observer")))
        await clients.disconnect("offline")
        await clients.insert_text("offline", 0, "x" * (2 * 1024 * 1024))
        await clients.reconnect("offline")
        closes = await clients.wait_close("offline", count=2, timeout_s=10)
        assert closes[-1]["code"] == 1009 and "too big" in closes[-1]["reason"]
        assert len((await clients.state("offline"))["json"]["text"]) == 2 * 1024 * 1024
        await clients.insert_text("peer", 0, "still fine")
        # Seen by another client = stored in the log (nothing is fanned out before the PubAck).
        await clients.wait_json("observer", {"text": "still fine"}, roots={"text": "text"})
        assert len(await doc_log.read(setup.doc_id, 0)) == 1  # the peer's edit only

    big_json = await RawSocket.json(ws_port, setup.doc_id, token)
    await big_json.wait_type("sync")
    with contextlib.suppress(tornado.websocket.WebSocketClosedError):
        await big_json.operation("big", b"\x00" * (1024 * 1024))  # 2 MB of hex
    assert await big_json.wait_closed() == 1009
    assert len(await doc_log.read(setup.doc_id, 0)) == 1


async def test_oversized_frame_close_is_not_a_reset(ctx, ws_port) -> None:
    """Item 11: a client still writing its oversized frame gets the 1009 close frame and then a
    clean end of stream (FIN). A reset (what closing with unread bytes sends) fails the client's
    write, and a client that acts on that first never reads the close frame: 1006, not 1009."""
    setup = await document_with(ctx, "editor")
    raw = await raw_websocket(ws_port, setup.doc_id, setup.users["editor"].access_token)
    loop = asyncio.get_running_loop()
    size = 10 * 1024 * 1024
    header = bytes([0x82, 0x80 | 127]) + size.to_bytes(8, "big") + b"\0\0\0\0"  # masked, key 0
    try:
        await loop.sock_sendall(raw, header)
        await asyncio.wait_for(loop.sock_sendall(raw, bytes(size)), 10)  # all of it: no reset
        received = b""
        while chunk := await asyncio.wait_for(loop.sock_recv(raw, 65536), 10):
            received += chunk  # until the server's FIN
    finally:
        raw.close()
    close_frame = bytes([0x88, 2 + len(b"message too big")]) + (1009).to_bytes(2, "big")
    assert close_frame + b"message too big" in received, received[-64:]


async def test_document_size_budget_refuses_growth_before_applying(ctx, settings, ws_port) -> None:
    """Pasting 20 KB over and over into a 64 KiB budget: refused once the budget is reached,
    with a clear error, nothing published; other clients unaffected."""
    small = dataclasses.replace(settings, doc_max_bytes=64 * 1024)
    setup = await document_with(ctx, "editor", "member")
    doc_log = ctx.doc_log
    async with second_node(small) as node:
        sock = await RawSocket.json(node.port, setup.doc_id, setup.users["editor"].access_token)
        await sock.wait_type("sync")
        source = pycrdt.Doc()
        results = []
        for i in range(6):
            await sock.operation(f"paste{i}", text_update(source, "p" * 20_000))
            results.append(await sock.ack(f"paste{i}"))
        kinds = [r["type"] for r in results]
        assert kinds[:3] == ["ack"] * 3 and kinds[-1] == "error", kinds
        assert results[-1]["code"] == "document_too_large"
        accepted = [r["version"] for r in results if r["type"] == "ack"]
        assert await doc_log.last_seq(setup.doc_id) == accepted[-1]

        async with YjsNodeClients() as clients:
            await clients.connect(
                "y", ws_base(node.port), setup.doc_id, setup.users["member"].access_token
            )
            await clients.wait_synced("y")
            mark = len(clients.events)
            await clients.insert_text("y", 0, "q" * 20_000)
            event = await clients.wait_event(
                lambda e: e["event"] == "permission_denied" and e["name"] == "y", 5, since=mark
            )
            assert event["reason"].startswith("document_too_large")
            assert (await clients.sync_status("y"))["wsconnected"]
        assert await doc_log.last_seq(setup.doc_id) == accepted[-1]
        await sock.send_json({"type": "ping"})
        await sock.wait_type("pong")
        await sock.aclose()


async def test_a_flooding_socket_is_paced_never_dropped(ctx, settings, ws_port) -> None:
    """S5 with back-pressure (issue 17 item 12): a socket sending far above its token bucket is
    slowed down, not refused -- every operation is acked, in order, none errors; the JetStream
    publish rate from it stays capped; another client's operation is answered meanwhile."""
    strict = dataclasses.replace(settings, ws_rate_per_s=20.0, ws_burst=20)
    setup = await document_with(ctx, "editor")
    token = setup.users["editor"].access_token
    doc_log = ctx.doc_log
    async with second_node(strict) as node:
        flooder = await RawSocket.json(node.port, setup.doc_id, token)
        calm = await RawSocket.json(node.port, setup.doc_id, token)
        await flooder.wait_type("sync")
        await calm.wait_type("sync")
        source = pycrdt.Doc()
        count = 100
        started = asyncio.get_running_loop().time()
        for i in range(count):
            await flooder.operation(f"f{i}", text_update(source, "f"))
        await calm.operation("calm", text_update(pycrdt.Doc(), "c"))
        assert (await calm.ack("calm"))["type"] == "ack"
        calm_answered = len(flooder.json_messages())

        acks = [await flooder.ack(f"f{i}", timeout_s=30) for i in range(count)]
        elapsed = asyncio.get_running_loop().time() - started
        assert [a["type"] for a in acks] == ["ack"] * count
        versions = [a["version"] for a in acks]
        assert versions == sorted(versions)
        assert calm_answered < count  # not queued behind the flood
        assert elapsed >= (count - 20) / 20 * 0.9  # burst + rate x time: the cap held
        assert len(await doc_log.read(setup.doc_id, 0)) == count + 1
        assert not flooder.closed.is_set()
        await flooder.aclose()
        await calm.aclose()


async def test_messages_queued_before_the_room_is_ready_are_bounded(
    ctx, settings, ws_port, monkeypatch
) -> None:
    """S7: while the room loads, a client's frames wait in a bounded queue; when it is full the
    server stops reading the socket (back-pressure) -- memory stays bounded, nothing is dropped,
    and every frame is answered once the room is ready."""
    bounded = dataclasses.replace(settings, ws_queue_max_msgs=10, ws_burst=1000)
    setup = await document_with(ctx, "editor")
    async with second_node(bounded) as node:
        rooms = node.ctx.rooms
        gate = asyncio.Event()
        real_acquire = rooms.acquire

        async def slow_acquire(doc_id: str):  # type: ignore[no-untyped-def]
            await gate.wait()
            return await real_acquire(doc_id)

        monkeypatch.setattr(rooms, "acquire", slow_acquire)
        sock = await RawSocket.open(node.port, setup.doc_id, setup.users["editor"].access_token)
        for _ in range(30):
            await sock.send(encode_sync_step1(b"\x00"))
        await wait_for_sessions(rooms, 1)
        (session,) = rooms.sessions.values()
        deadline = asyncio.get_running_loop().time() + 10
        while session.queued_frames < 10:
            assert asyncio.get_running_loop().time() < deadline, session.queued_frames
            await asyncio.sleep(0.02)
        for _ in range(20):
            await asyncio.sleep(0)  # the loop runs; the 11th frame is not read
        assert session.queued_frames == 10
        gate.set()
        for i in range(30):
            await sock.wait_for(lambda m: isinstance(m, bytes) and m[:2] == b"\x00\x01", start=i)
        replies = [m for m in sock.messages if isinstance(m, bytes) and m[:2] == b"\x00\x01"]
        assert len(replies) == 30
        assert not sock.closed.is_set()
        await sock.aclose()


async def test_slow_reader_is_closed_and_others_keep_going(ctx, settings, ws_port) -> None:
    """R18: a client that stops reading is closed once its unsent bytes pass the limit; memory
    stays bounded (nothing is queued for it past the limit); the other clients are unaffected."""
    tight = dataclasses.replace(
        settings, ws_max_pending_bytes=256 * 1024, ws_burst=1000, doc_max_bytes=64 * 1024**2
    )
    setup = await document_with(ctx, "editor")
    token = setup.users["editor"].access_token
    async with second_node(tight) as node:
        rooms = node.ctx.rooms
        stalled = await stalled_socket(node.port, setup.doc_id, token)
        writer = await RawSocket.json(node.port, setup.doc_id, token)
        reader = await RawSocket.json(node.port, setup.doc_id, token)
        await writer.wait_type("sync")
        await reader.wait_type("sync")
        assert len(rooms.sessions) == 3
        source = pycrdt.Doc()
        text = source.get("text", type=pycrdt.Text)
        for i in range(200):
            before = source.get_state()
            text.insert(0, "z" * 60_000)  # 60 KB to every reader
            await writer.operation(f"w{i}", source.get_update(before))
            await writer.ack(f"w{i}")
            if len(rooms.sessions) == 2:
                break
        await wait_for_sessions(rooms, 2)
        await reader.wait_json(lambda m: m.get("type") == "operation")
        stalled.close()
        await writer.aclose()
        await reader.aclose()


async def stalled_socket(port: int, doc_id: str, token: str) -> socket.socket:
    """A WebSocket client that completes the handshake and then never reads again."""
    return await raw_websocket(port, doc_id, token, receive_buffer=4096)


async def raw_websocket(
    port: int, doc_id: str, token: str, receive_buffer: int | None = None
) -> socket.socket:
    """A WebSocket handshake on a plain non-blocking TCP socket (frames are up to the test)."""
    raw = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    if receive_buffer is not None:
        raw.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, receive_buffer)
    raw.setblocking(False)
    loop = asyncio.get_running_loop()
    await loop.sock_connect(raw, ("127.0.0.1", port))
    key = base64.b64encode(os.urandom(16)).decode()
    request = (
        f"GET /ws/documents/{doc_id}?token={token} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n"
        f"Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: {key}\r\n"
        "Sec-WebSocket-Version: 13\r\n\r\n"
    )
    await loop.sock_sendall(raw, request.encode())
    response = b""
    while b"\r\n\r\n" not in response:
        response += await loop.sock_recv(raw, 1)
    assert response.startswith(b"HTTP/1.1 101"), response
    return raw


async def wait_for_sessions(rooms, count: int, timeout_s: float = 10.0) -> None:  # type: ignore[no-untyped-def]
    """Tornado aborts a socket that does not answer its close within 5 s; wait for that."""
    deadline = asyncio.get_running_loop().time() + timeout_s
    while len(rooms.sessions) != count:
        assert asyncio.get_running_loop().time() < deadline, len(rooms.sessions)
        await asyncio.sleep(0.05)


async def test_poison_message_on_the_subject_is_skipped(ctx, ws_port) -> None:
    """S3 (the part rooms own): garbage published straight to the document's subject, bypassing
    validation, is skipped and counted; the document keeps loading and editing."""
    from live.room import POISON_UPDATES, Room

    setup = await document_with(ctx, "editor")
    token = setup.users["editor"].access_token
    before = POISON_UPDATES.labels(ctx.node_id)._value.get()
    async with YjsNodeClients() as clients:
        await clients.connect("a", ws_base(ws_port), setup.doc_id, token)
        await clients.wait_synced("a")
        await clients.insert_text("a", 0, "good")
        await clients.wait_json("a", {"text": "good"}, roots={"text": "text"})
        subject = f"collab.doc.{setup.doc_id}.update"
        await ctx.nats.jetstream.publish(subject, b"\xff\xff\xff\x7f garbage")
        # Headers naming this node, or a made-up signature, do not make an entry trusted: only
        # our own PubAck's seq or a valid signature of this document's bytes does.
        forged = {
            "Collab-Node": ctx.node_id,
            "Collab-Client": "x",
            "Collab-User": "y",
            "Collab-Sig": "0" * 64,
        }
        poison = await ctx.nats.jetstream.publish(subject, b"\xff\xff\xff\x7f more", headers=forged)
        room = ctx.rooms.rooms[setup.doc_id]
        assert await room.wait_applied(poison.seq, 5)
        assert POISON_UPDATES.labels(ctx.node_id)._value.get() == before + 2
        await clients.insert_text("a", 4, " after")
        await clients.connect("late", ws_base(ws_port), setup.doc_id, token)
        await clients.wait_synced("late")
        await clients.wait_json("late", {"text": "good after"}, roots={"text": "text"})

    # A room loaded from scratch skips it too.
    fresh = Room(
        setup.doc_id,
        db=ctx.db,
        doc_log=ctx.doc_log,
        nats_conn=ctx.nats,
        settings=ctx.settings,
        on_empty=lambda _room: None,
    )
    await fresh.start()
    try:
        assert text_of(fresh.full_state()) == "good after"
    finally:
        await fresh.stop()
