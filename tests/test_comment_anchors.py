"""Anchors tracked by the server: a real BlockNote client (tests/js) edits the document; the
thread's quote follows the text, the thread is orphaned when an editor deletes its block and
anchored again when a version restore brings the block back, each change pushed live once."""

from __future__ import annotations

import dataclasses

import pytest

from tests.comments_support import THREADS, body
from tests.documents_support import DOCS
from tests.realtime_support import RawSocket, document_with
from tests.test_editor_content import connected
from tests.test_projection_live import rows_when
from tests.yjs_client import YjsNodeClients

pytestmark = pytest.mark.timeout(120)

REFRESH_S = 0.3


@pytest.fixture
def settings(settings):  # type: ignore[no-untyped-def]
    return dataclasses.replace(settings, projection_refresh_s=REFRESH_S)


def blocks(p1_text: str | None) -> list[dict]:
    content = [{"id": "keep", "type": "paragraph", "content": "stays"}]
    if p1_text is not None:
        content.append({"id": "p1", "type": "paragraph", "content": p1_text})
    return content


async def anchor_event(sock: RawSocket, start: int, **expected) -> dict:
    """The next `thread.anchor_changed` whose anchor has the expected fields."""

    def matches(m: dict) -> bool:
        if m.get("type") != "event" or m["event"]["type"] != "thread.anchor_changed":
            return False
        anchor = m["event"]["entity"]["anchor"]
        return all(anchor[k] == v for k, v in expected.items())

    return await sock.wait_json(matches, start=start)


async def test_orphaned_when_the_block_goes_anchored_when_it_comes_back(api, ctx, ws_port):
    setup = await document_with(ctx, "editor")
    editor, owner = setup.users["editor"], setup.users["owner"]
    doc = setup.doc_id
    async with YjsNodeClients() as clients:
        await connected(clients, setup, ws_port, "ada")
        await clients.editor_write("ada", "blocknote", blocks("hello anchored world"))
        await rows_when(ctx, doc, lambda r: "p1" in r)
        saved = await api.post(f"{DOCS}{doc}/versions/", {"name": "v"}, token=owner.access_token)
        assert saved.status == 201, saved.body

        positions = await clients.editor_anchor("ada", "p1", 6, 14)
        anchor = {"block_id": "p1", "start": positions["start"], "end": positions["end"]}
        created = await api.post(
            f"{DOCS}{doc}/threads/",
            {"body": body("why anchored?"), "anchor": {**anchor, "quoted_text": "anchored"}},
            token=editor.access_token,
        )
        assert created.status == 201, created.body
        thread_id = created.body["id"]
        assert created.body["anchor"]["state"] == "anchored"
        sock = await RawSocket.json(ws_port, doc, owner.access_token)
        await sock.wait_type("events")

        # Typing inside the range: the quote is read again from the relative positions.
        await clients.editor_write("ada", "blocknote", blocks("hello anchXored world"))
        await anchor_event(sock, 0, state="anchored", quoted_text="anchXored")

        # An editor deletes the block: the thread is orphaned, once.
        mark = len(sock.messages)
        await clients.editor_write("ada", "blocknote", blocks(None))
        orphaned = await anchor_event(sock, mark, state="orphaned")
        assert orphaned["event"]["actor_id"] is None
        assert orphaned["event"]["thread_id"] == thread_id
        got = await api.get(f"{THREADS}{thread_id}/", token=editor.access_token)
        assert got.body["anchor"]["state"] == "orphaned"
        assert got.body["anchor"]["quoted_text"] == "anchXored"  # the last words it was about

        # A version restore brings the block back: anchored again.
        mark = len(sock.messages)
        restored = await api.post(
            f"{DOCS}{doc}/versions/{saved.body['id']}/restore/", token=owner.access_token
        )
        assert restored.status == 201, restored.body
        await anchor_event(sock, mark, state="anchored")
        mark = len(sock.messages)
        await clients.editor_wait("ada", "blocknote", "hello anchored world")
        # A later edit elsewhere changes nothing for the thread: no event.
        await clients.editor_append("ada", "keep", " still")
        await rows_when(ctx, doc, lambda r: r["keep"]["text"] == "stays still")
        # A later event is a fence: anything the refresh emitted was published before it.
        reply = await api.post(
            f"{THREADS}{thread_id}/comments/", {"body": body("ok")}, token=editor.access_token
        )
        assert reply.status == 201
        await sock.wait_json(
            lambda m: m.get("type") == "event" and m["event"]["type"] == "comment.created",
            start=mark,
        )
        changes = [
            m
            for m in sock.json_messages()
            if m.get("type") == "event" and m["event"]["type"] == "thread.anchor_changed"
        ]
        assert [c["event"]["entity"]["anchor"]["state"] for c in changes] == [
            "anchored",
            "orphaned",
            "anchored",
        ]
        await sock.aclose()


async def test_a_quote_after_a_mention_is_read_from_the_right_text_node(api, ctx, ws_port):
    """A mention splits a block's text into several Yjs text nodes; relative positions do not say
    which one they are in: the server finds it (and corrects a client's wrong quote)."""
    setup = await document_with(ctx, "editor")
    editor = setup.users["editor"]
    async with YjsNodeClients() as clients:
        await connected(clients, setup, ws_port, "ada")
        await clients.editor_write("ada", "blocknote", blocks("ask "))
        await clients.editor_mention("ada", "p1", editor.id)
        await clients.editor_append("ada", "p1", " about the tail end")
        await rows_when(ctx, setup.doc_id, lambda r: "tail end" in r.get("p1", {}).get("text", ""))
        positions = await clients.editor_anchor("ada", "p1", 11, 19, node=1)
        created = await api.post(
            f"{DOCS}{setup.doc_id}/threads/",
            {
                "body": body("which end?"),
                "anchor": {"block_id": "p1", **positions, "quoted_text": "not this"},
            },
            token=editor.access_token,
        )
        assert created.status == 201, created.body
        assert created.body["anchor"]["state"] == "anchored"
        assert created.body["anchor"]["quoted_text"] == "tail end"


async def test_a_rest_block_delete_orphans_the_thread(api, ctx):
    setup = await document_with(ctx, "editor")
    token = setup.users["editor"].access_token
    doc = setup.doc_id
    made = await api.post(
        f"{DOCS}{doc}/blocks/",
        {"block": {"id": "b9", "type": "paragraph", "content": "rest block"}},
        token=token,
    )
    assert made.status == 201, made.body
    created = await api.post(
        f"{DOCS}{doc}/threads/",
        {"body": body("on b9"), "anchor": {"block_id": "b9"}},
        token=token,
    )
    thread_id = created.body["id"]
    assert (await api.delete(f"{DOCS}{doc}/blocks/b9/", token=token)).status == 204
    got = await api.get(f"{THREADS}{thread_id}/", token=token)
    # REST block writes re-project before they answer: the state is already there.
    assert got.body["anchor"]["state"] == "orphaned"
    events = await ctx.db.fetchval(
        "SELECT count(*) FROM outbox WHERE payload->'event'->>'thread_id' = $1"
        " AND payload->'event'->>'type' = 'thread.anchor_changed'",
        thread_id,
    )
    assert events == 1
