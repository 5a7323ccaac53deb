"""Real y-websocket clients against our server: convergence, offline edits, late joiners."""

from __future__ import annotations

import asyncio
import dataclasses

import pycrdt
import pytest

from core.yjs_state import decode_state_vector
from live.rooms import RoomManager
from models.repo import doc_snapshots
from services.doc_state import load_state
from services.snapshots import SnapshotResult
from tests.realtime_support import converged, document_with, ws_base
from tests.yjs_client import YjsNodeClients

pytestmark = pytest.mark.timeout(90)


@pytest.fixture
def settings(settings):  # type: ignore[no-untyped-def]
    """Unload idle rooms quickly so the late-joiner test covers a reload from the log."""
    return dataclasses.replace(settings, room_unload_grace_s=0.3)


async def test_concurrent_random_edits_converge(ctx, ws_port) -> None:
    setup = await document_with(ctx, "editor")
    url = ws_base(ws_port)
    token = setup.users["editor"].access_token
    async with YjsNodeClients() as clients:
        names = ["a", "b", "c"]
        ids = {n: await clients.connect(n, url, setup.doc_id, token) for n in names}
        await asyncio.gather(*(clients.wait_synced(n) for n in names))

        await asyncio.gather(
            *(clients.random_edits(n, count=150, seed=i + 1) for i, n in enumerate(names))
        )

        states = await converged(clients, ids, names)
        assert len({s["state_hash"] for s in states}) == 1
        assert {s["json"]["text"] for s in states} != {""}
        # The log holds the same history. (Compared by state vector: the random edits split
        # UTF-16 surrogate pairs, which JS strings keep and Rust strings cannot, so pycrdt's
        # text rendering differs from Yjs' while the CRDT state is the same.)
        state = await load_state(ctx.db, ctx.doc_log, setup.doc_id)
        log_clocks = decode_state_vector(pycrdt.get_state(state.update))
        assert {str(c): k for c, k in log_clocks.items()} == states[0]["state_vector_map"]

        await clients.connect("late", url, setup.doc_id, token)
        await clients.wait_synced("late")
        late = await clients.state("late")
        assert late["json"] == states[0]["json"]


async def test_offline_edits_merge_on_reconnect(ctx, ws_port) -> None:
    setup = await document_with(ctx, "editor")
    url = ws_base(ws_port)
    token = setup.users["editor"].access_token
    async with YjsNodeClients() as clients:
        alice = await clients.connect("alice", url, setup.doc_id, token)
        bob = await clients.connect("bob", url, setup.doc_id, token)
        await asyncio.gather(clients.wait_synced("alice"), clients.wait_synced("bob"))
        await clients.insert_text("alice", 0, "shared ")
        await clients.wait_json("bob", {"text": "shared "}, roots={"text": "text"})

        await clients.disconnect("bob")
        await clients.insert_text("bob", 7, "offline-bob ")
        await clients.map_set("bob", "k", "v")
        await clients.array_push("bob", [1, 2])
        await clients.insert_text("alice", 0, "online-alice ")
        await clients.reconnect("bob")

        alice_state, bob_state = await converged(
            clients, {"alice": alice, "bob": bob}, ["alice", "bob"]
        )
        assert alice_state["state_hash"] == bob_state["state_hash"]
        assert "offline-bob" in alice_state["json"]["text"]
        assert alice_state["json"]["map"] == {"k": "v"}
        assert alice_state["json"]["array"] == [1, 2]


async def test_late_joiner_gets_state_after_the_room_was_unloaded(ctx, ws_port) -> None:
    setup = await document_with(ctx, "editor")
    url = ws_base(ws_port)
    token = setup.users["editor"].access_token
    async with YjsNodeClients() as clients:
        await clients.connect("first", url, setup.doc_id, token)
        await clients.wait_synced("first")
        await clients.insert_text("first", 0, "persisted")
        await clients.map_set("first", "n", 1)
        rooms = ctx.rooms
        await wait_until(lambda: rooms.rooms[setup.doc_id].last_applied_seq > 0)
        await clients.destroy("first")
        await wait_until(lambda: setup.doc_id not in rooms.rooms)

        await clients.connect("late", url, setup.doc_id, token)
        await clients.wait_synced("late")
        await clients.wait_json("late", {"text": "persisted", "map": {"n": 1}})


class UnloadSnapshots:
    """Observes the manager's real unload snapshots: which were started (counted synchronously,
    when the unload spawns them) and what each returned (to wait on, instead of polling)."""

    def __init__(self, rooms: RoomManager, monkeypatch: pytest.MonkeyPatch) -> None:
        self.started: list[str] = []
        self._results: asyncio.Queue[SnapshotResult | None] = asyncio.Queue()
        run = rooms._snapshot_unloaded

        def observed(doc_id: str):  # type: ignore[no-untyped-def]
            self.started.append(doc_id)
            return self._report(run(doc_id))

        monkeypatch.setattr(rooms, "_snapshot_unloaded", observed)

    async def _report(self, running) -> SnapshotResult | None:  # type: ignore[no-untyped-def]
        result = await running
        self._results.put_nowait(result)
        return result

    async def next(self, timeout_s: float = 10.0) -> SnapshotResult | None:
        return await asyncio.wait_for(self._results.get(), timeout_s)


async def test_unloading_room_snapshots_the_document(ctx, ws_port, monkeypatch) -> None:
    """Issue 5 item 6: a room that applied updates compacts its document when it unloads (at the
    last update's seq; the second time also purging behind the first); a read-only visit does
    not; a fresh client still gets the full state."""
    setup = await document_with(ctx, "editor")
    url, token, doc_id = ws_base(ws_port), setup.users["editor"].access_token, setup.doc_id
    rooms: RoomManager = ctx.rooms
    doc_log = ctx.doc_log
    snapshots = UnloadSnapshots(rooms, monkeypatch)
    roots = {"text": "text", "map": "map"}
    rounds = [  # (insert at, text, what the room then holds)
        (0, "hello", {"text": "hello", "map": {"n": 1}}),
        (5, " world", {"text": "hello world", "map": {"n": 2}}),
    ]
    results: list[SnapshotResult] = []
    async with YjsNodeClients() as clients:
        for index, insert, expected in rounds:
            writer, watcher = f"writer{len(results)}", f"watcher{len(results)}"
            await clients.connect(writer, url, doc_id, token)
            await clients.connect(watcher, url, doc_id, token)
            await asyncio.gather(clients.wait_synced(writer), clients.wait_synced(watcher))
            await clients.insert_text(writer, index, insert)
            await clients.map_set(writer, "n", expected["map"]["n"])
            await clients.wait_json(watcher, expected, roots=roots)  # the room applied both
            await clients.destroy(writer)
            await clients.destroy(watcher)
            await wait_until(lambda: doc_id not in rooms.rooms)

            result = await snapshots.next()
            last_seq = await doc_log.last_seq(doc_id)
            assert result is not None and result.status == "snapshotted", result
            assert result.seq == last_seq
            assert await doc_snapshots.get_snapshot_seq(ctx.db, doc_id) == last_seq
            results.append(result)
        first, second = results
        assert second.prev_seq == first.seq and second.purged_through == first.seq
        assert min(e.seq for e in await doc_log.read(doc_id, 0)) > first.seq

        await clients.connect("late", url, doc_id, token)
        await clients.wait_synced("late")
        await clients.wait_json("late", {"text": "hello world", "map": {"n": 2}}, roots=roots)
        assert rooms.rooms[doc_id].snapshot_seq == second.seq  # loaded from the new snapshot
        await clients.destroy("late")
        await wait_until(lambda: doc_id not in rooms.rooms)
        assert snapshots.started == [doc_id, doc_id]  # the read-only visit started none


async def wait_until(condition, timeout_s: float = 10.0) -> None:  # type: ignore[no-untyped-def]
    """Poll a cheap in-process condition (room bookkeeping has no event to wait on)."""
    deadline = asyncio.get_running_loop().time() + timeout_s
    while not condition():
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(0.02)


async def test_reconnecting_without_changes_adds_nothing_to_the_log(ctx, ws_port) -> None:
    """A reconnect's SyncStep2 repeats the whole delete set; it is not stored again."""
    setup = await document_with(ctx, "editor")
    token = setup.users["editor"].access_token
    doc_log = ctx.doc_log
    async with YjsNodeClients() as clients:
        await clients.connect("a", ws_base(ws_port), setup.doc_id, token)
        await clients.connect("b", ws_base(ws_port), setup.doc_id, token)
        await asyncio.gather(clients.wait_synced("a"), clients.wait_synced("b"))
        await clients.insert_text("a", 0, "hello world")
        await clients.delete_text("a", 0, 6)
        await clients.map_set("a", "done", True)
        # b has the last of a's updates, so all of them are in the log.
        await clients.wait_json("b", {"text": "world", "map": {"done": True}})
        entries = len(await doc_log.read(setup.doc_id, 0))
        for _ in range(3):
            await clients.disconnect("a")
            await clients.reconnect("a")
            await clients.wait_synced("a")
        await clients.insert_text("a", 5, "!")  # a real edit after the reconnects: stored
        await clients.wait_json("b", {"text": "world!", "map": {"done": True}})
        assert len(await doc_log.read(setup.doc_id, 0)) == entries + 1
