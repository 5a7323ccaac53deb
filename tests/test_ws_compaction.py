"""Rooms re-encode a document as real clients edit it (core/compaction.py): what a late joiner
then gets -- from the loaded room, and from the re-encoded snapshot after the room unloaded -- is
the document stock Yjs and BlockNote hold; a document with emoji keeps the merged form."""

from __future__ import annotations

import dataclasses

import pytest

import live.merged_doc
from live.merged_doc import REENCODINGS
from live.rooms import RoomManager
from tests.realtime_support import document_with, ws_base
from tests.test_editor_content import BLOCKNOTE_DOC
from tests.test_ws_sync import UnloadSnapshots, wait_until
from tests.yjs_client import YjsNodeClients

pytestmark = pytest.mark.timeout(90)

ROOTS = {"text": "text", "map": "map", "array": "array", "prosemirror": "xml"}
#: Words of the random edits without the default alphabet's emoji (whose surrogate pair the
#: edits split, which keeps a document merged).
BMP_ALPHABET = ["a", "b", "c", " ", "é", "ß", "中", "\n"]


@pytest.fixture
def settings(settings):  # type: ignore[no-untyped-def]
    """Unload idle rooms quickly, so the cold join loads the snapshot the unload wrote."""
    return dataclasses.replace(settings, room_unload_grace_s=0.3)


@pytest.fixture(autouse=True)
def compact_often(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(live.merged_doc, "COMPACT_AFTER_ENTRIES", 8)


@pytest.mark.parametrize("alphabet", [BMP_ALPHABET, None], ids=["plain", "emoji"])
async def test_late_joiners_get_the_whole_document(ctx, ws_port, monkeypatch, alphabet) -> None:
    setup = await document_with(ctx, "editor")
    url, token, doc_id = ws_base(ws_port), setup.users["editor"].access_token, setup.doc_id
    rooms: RoomManager = ctx.rooms
    snapshots = UnloadSnapshots(rooms, monkeypatch)
    reencoded = alphabet is not None
    outcome = REENCODINGS.labels("reencoded" if reencoded else "kept_merged")
    before = outcome._value.get()
    async with YjsNodeClients() as clients:
        await clients.connect("writer", url, doc_id, token)
        await clients.wait_synced("writer")
        await clients.editor_write("writer", "blocknote", BLOCKNOTE_DOC)
        for seed in range(1, 6):  # separate requests: many log entries
            await clients.random_edits("writer", 40, seed, alphabet=alphabet)
        await clients.editor_append("writer", "p1", " and more")
        written = (await clients.state("writer", ROOTS))["json"]
        blocks = await clients.editor_read("writer", "blocknote")

        await clients.connect("late", url, doc_id, token)
        await clients.wait_synced("late")
        await clients.wait_json("late", written, roots=ROOTS)
        assert await clients.editor_read("late", "blocknote") == blocks
        room = rooms.rooms[doc_id]
        room.full_state()
        assert room.doc.is_reencoded is reencoded
        assert outcome._value.get() > before

        await clients.destroy("writer")
        await clients.destroy("late")
        await wait_until(lambda: doc_id not in rooms.rooms)
        saved = await snapshots.next()
        assert saved is not None and saved.status == "snapshotted", saved
        compact = await ctx.db.fetchval(
            "SELECT compact FROM document_snapshots WHERE document_id = $1", doc_id
        )
        assert compact is reencoded

        await clients.connect("cold", url, doc_id, token)
        await clients.wait_synced("cold")
        await clients.wait_json("cold", written, roots=ROOTS)
        assert await clients.editor_read("cold", "blocknote") == blocks
        assert rooms.rooms[doc_id].doc.is_reencoded is reencoded
