"""Restore seen by real editors: stock y-websocket clients connected to our server converge to the
restored version when it is restored over REST, keep their concurrent edits, and a late joiner
(after the room unloaded and the document was compacted) loads the same content."""

from __future__ import annotations

import asyncio
import dataclasses

import pytest

from services.snapshots import snapshot_document
from tests.documents_support import root_text
from tests.realtime_support import document_with, ws_base
from tests.yjs_client import YjsNodeClients

pytestmark = pytest.mark.timeout(90)

DOCS = "/api/v1/documents/"
TEXT = {"text": "text"}


@pytest.fixture
def settings(settings):  # type: ignore[no-untyped-def]
    return dataclasses.replace(settings, room_unload_grace_s=0.3)


async def test_restore_reaches_connected_yjs_clients(api, ctx, ws_port) -> None:
    setup = await document_with(ctx, "editor")
    owner, editor = setup.users["owner"], setup.users["editor"]
    url = ws_base(ws_port)
    async with YjsNodeClients() as clients:
        await clients.connect("alice", url, setup.doc_id, editor.access_token)
        await clients.connect("bob", url, setup.doc_id, editor.access_token)
        await asyncio.gather(clients.wait_synced("alice"), clients.wait_synced("bob"))
        await clients.insert_text("alice", 0, "the original")
        await clients.wait_json("bob", {"text": "the original"}, roots=TEXT)

        saved = await api.post(
            f"{DOCS}{setup.doc_id}/versions/", {"name": "good"}, token=owner.access_token
        )
        assert saved.status == 201, saved.body
        await clients.delete_text("bob", 0, 4)
        await clients.insert_text("bob", 8, " ruined")
        await clients.wait_json("alice", {"text": "original ruined"}, roots=TEXT)

        restored = await api.post(
            f"{DOCS}{setup.doc_id}/versions/{saved.body['id']}/restore/",
            token=owner.access_token,
        )
        assert restored.status == 201, restored.body
        for name in ("alice", "bob"):
            await clients.wait_json(name, {"text": "the original"}, roots=TEXT)

        # Editing goes on on top of the restored content, for everybody.
        await clients.insert_text("alice", 12, "!")
        await clients.wait_json("bob", {"text": "the original!"}, roots=TEXT)
        alice, bob = await clients.state("alice"), await clients.state("bob")
        assert alice["state_hash"] == bob["state_hash"]

    await snapshot_document(ctx, setup.doc_id)
    async with YjsNodeClients() as clients:
        await clients.connect("late", url, setup.doc_id, editor.access_token)
        await clients.wait_synced("late")
        assert (await clients.state("late", roots=TEXT))["json"] == {"text": "the original!"}
    got = await api.get(f"{DOCS}{setup.doc_id}/", token=owner.access_token)
    assert root_text(got.body["content"]) == "the original!"
