"""Body mentions typed by a real BlockNote editor (the product's schema with the mention inline
content, over the stock y-websocket provider) reach the mentioned member's inbox within seconds,
detected from the updates as they arrive (services/body_mentions.py via the projection refresher);
a mention of someone who may not view the page notifies nobody and is reported to its author;
retyping, moving and re-adding the same mention in the same block never notify twice; concurrent
scans (two nodes) notify once; REST block writes carry mentions both ways."""

from __future__ import annotations

import asyncio
import dataclasses
import time
from typing import Any

import pytest

from bus.jetstream import user_notification_subject
from models.repo import document_mentions as mentions_repo
from services import body_mentions
from services.block_tree import Block
from services.doc_state import load_state
from tests.board_helpers import second_node
from tests.notification_support import InboxSocket
from tests.realtime_support import DocSetup, document_with, ws_base
from tests.test_editor_content import connected, get_content
from tests.ws_helpers import Collector, fast_user
from tests.yjs_client import YjsNodeClients

pytestmark = pytest.mark.timeout(120)

REFRESH_S = 0.3
WITHIN_S = 5.0  # "within seconds": the refresh period plus a scan, with room for a loaded CI
DOCS = "/api/v1/documents/"


@pytest.fixture
def settings(settings):  # type: ignore[no-untyped-def]
    return dataclasses.replace(settings, projection_refresh_s=REFRESH_S)


def paragraph(block_id: str, *content: Any) -> dict[str, Any]:
    return {"id": block_id, "type": "paragraph", "content": list(content)}


def mention(user_id: str) -> dict[str, Any]:
    return {"type": "mention", "props": {"user": user_id}}


async def inbox(ctx, user_id: str) -> list[dict[str, Any]]:  # type: ignore[no-untyped-def]
    rows = await ctx.db.fetch(
        "SELECT kind, actor_id::text AS actor_id, document_id::text AS document_id, data"
        " FROM notifications WHERE recipient_id = $1 ORDER BY created_at, id",
        user_id,
    )
    return [dict(r) for r in rows]


async def inbox_when(ctx, user_id: str, count: int) -> list[dict[str, Any]]:  # type: ignore[no-untyped-def]
    """The user's notifications once there are `count` of them (polled, with a deadline)."""
    deadline = time.monotonic() + WITHIN_S
    while True:
        rows = await inbox(ctx, user_id)
        if len(rows) >= count:
            return rows
        assert time.monotonic() < deadline, f"inbox of {user_id} still {rows}"
        await asyncio.sleep(0.05)


async def scanned(ctx, setup: DocSetup) -> int:  # type: ignore[no-untyped-def]
    """Wait until the mention scan has covered everything in the document's log; its seq. What
    did not notify by then never will: the scan is the only place notifications come from."""
    seq = (await load_state(ctx.db, ctx.doc_log, setup.doc_id)).seq
    deadline = time.monotonic() + WITHIN_S
    while (await mentions_repo.scan_seq(ctx.db, setup.doc_id) or 0) < seq:
        assert time.monotonic() < deadline, "the mention scan never caught up"
        await asyncio.sleep(0.05)
    return seq


async def team_document(ctx) -> tuple[DocSetup, dict[str, str]]:  # type: ignore[no-untyped-def]
    """Editor (the author), a member who can view, a Guest who cannot, a non-member."""
    setup = await document_with(ctx, "editor", "member", "guest")
    outsider = await fast_user(ctx, "outsider")
    ids = {role: user.id for role, user in setup.users.items()} | {"outsider": outsider.id}
    return setup, ids


async def test_typed_mention_notifies_the_member_once(api, ctx, ws_port):
    setup, ids = await team_document(ctx)
    async with YjsNodeClients() as clients:
        await connected(clients, setup, ws_port, "ada")
        await clients.editor_write("ada", "blocknote", [paragraph("p1", "Hello "), paragraph("p2")])
        await scanned(ctx, setup)
        subject = await Collector().start(ctx, user_notification_subject(ids["member"]))
        started = time.monotonic()
        await clients.editor_mention("ada", "p1", ids["member"])
        [note] = await inbox_when(ctx, ids["member"], 1)
        latency_s = time.monotonic() - started
        # ...and on the member's notification subject (what their inbox sockets follow).
        event, _ = await subject.wait_for(lambda e: e["type"] == "notification.created")
        await subject.stop()
        assert event["notification"]["kind"] == "document.mention"
        assert event["notification"]["document_id"] == setup.doc_id
        assert note["kind"] == "document.mention"
        assert note["actor_id"] == ids["editor"] and note["document_id"] == setup.doc_id
        assert note["data"] == {"title": "Doc", "block_id": "p1", "excerpt": "Hello "}
        assert latency_s < WITHIN_S

        # Typing around it, retyping it, moving its block and re-adding it: still one.
        await clients.editor_append("ada", "p1", " see this")
        await clients.editor_write(
            "ada", "blocknote", [paragraph("p1", "Hello  see this"), paragraph("p2")]
        )
        await scanned(ctx, setup)  # the mention is gone now, and the scan saw that state
        await clients.editor_mention("ada", "p1", ids["member"])
        await clients.editor_write(
            "ada",
            "blocknote",
            [paragraph("p2"), paragraph("p1", "Hello ", mention(ids["member"]), " see this")],
        )
        await scanned(ctx, setup)
        assert len(await inbox(ctx, ids["member"])) == 1

        # The same member in another block is another mention; yourself, nobody.
        await clients.editor_mention("ada", "p2", ids["member"])
        await clients.editor_mention("ada", "p2", ids["editor"])
        notes = await inbox_when(ctx, ids["member"], 2)
        assert [n["data"]["block_id"] for n in notes] == ["p1", "p2"]
        await scanned(ctx, setup)
        assert await inbox(ctx, ids["editor"]) == []
    seen = await mentions_repo.list_mentions(ctx.db, setup.doc_id)
    assert {(m.block_id, m.user_id, m.outcome) for m in seen} == {
        ("p1", ids["member"], "notified"),
        ("p2", ids["member"], "notified"),
        ("p2", ids["editor"], "silent"),
    }
    assert {m.mentioned_by for m in seen} == {ids["editor"]}


async def test_mention_of_someone_without_access_is_reported_to_the_author(api, ctx, ws_port):
    setup, ids = await team_document(ctx)
    # A private page: the Guest and the non-member may not view it; the editor has a grant.
    await ctx.db.execute("UPDATE documents SET is_private = true WHERE id = $1", setup.doc_id)
    await ctx.db.execute(
        "INSERT INTO document_grants (document_id, user_id, role) VALUES ($1, $2, 'editor')",
        setup.doc_id,
        ids["editor"],
    )
    async with YjsNodeClients() as clients:
        await connected(clients, setup, ws_port, "ada")
        await clients.editor_write(
            "ada",
            "blocknote",
            [paragraph("p1", "Ask ", mention(ids["guest"]), " and ", mention(ids["outsider"]))],
        )
        reports = await inbox_when(ctx, ids["editor"], 2)
        await scanned(ctx, setup)
    assert {r["kind"] for r in reports} == {"document.mention_no_access"}
    assert sorted(r["data"]["mentioned_user_id"] for r in reports) == sorted(
        [ids["guest"], ids["outsider"]]
    )
    # The report names the author's own page and the id they wrote: nothing about the user.
    assert {frozenset(r["data"]) for r in reports} == {
        frozenset({"title", "block_id", "mentioned_user_id"})
    }
    assert {r["actor_id"] for r in reports} == {None}
    assert await inbox(ctx, ids["guest"]) == [] and await inbox(ctx, ids["outsider"]) == []
    assert {m.outcome for m in await mentions_repo.list_mentions(ctx.db, setup.doc_id)} == {
        "no_access"
    }


async def test_unknown_ids_and_existing_mentions_are_silent(api, ctx, ws_port):
    setup, ids = await team_document(ctx)
    # A document from before detection existed: what it holds at its first scan is recorded.
    await ctx.db.execute(
        "INSERT INTO document_mention_scans (document_id, seq) VALUES ($1, -1)", setup.doc_id
    )
    async with YjsNodeClients() as clients:
        await connected(clients, setup, ws_port, "ada")
        await clients.editor_write(
            "ada",
            "blocknote",
            [
                paragraph("p1", mention(ids["member"])),
                paragraph(
                    "p2", mention("not-a-uuid"), mention("00000000-0000-4000-8000-0000000000ff")
                ),
            ],
        )
        await scanned(ctx, setup)
        await clients.editor_mention("ada", "p2", ids["member"])
        [note] = await inbox_when(ctx, ids["member"], 1)
    assert note["data"]["block_id"] == "p2"
    seen = await mentions_repo.list_mentions(ctx.db, setup.doc_id)
    assert {(m.block_id, m.outcome) for m in seen} == {("p1", "silent"), ("p2", "notified")}


async def test_concurrent_scans_notify_once(api, ctx, ws_port):
    setup, ids = await team_document(ctx)
    async with YjsNodeClients() as clients:
        await connected(clients, setup, ws_port, "ada")
        await clients.editor_write("ada", "blocknote", [paragraph("p1", mention(ids["member"]))])
        await get_content(api, setup)
        state = await load_state(ctx.db, ctx.doc_log, setup.doc_id)
        # Two nodes (and this node's refresher) scanning the same state at once.
        results = await asyncio.gather(
            *(body_mentions.scan(ctx, setup.doc_id, state) for _ in range(3))
        )
        await scanned(ctx, setup)
    assert sum(len(found) for found in results) <= 1
    assert len(await inbox(ctx, ids["member"])) == 1


async def test_rest_block_writes_carry_mentions(api, ctx, ws_port):
    setup, ids = await team_document(ctx)
    token = setup.users["editor"].access_token
    async with YjsNodeClients() as clients:
        await connected(clients, setup, ws_port, "ada")
        await clients.editor_write("ada", "blocknote", [paragraph("p1", "Start")])
        await scanned(ctx, setup)
        created = await api.post(
            f"{DOCS}{setup.doc_id}/blocks/",
            {
                "block": {
                    "id": "r1",
                    "type": "paragraph",
                    "content": [
                        {"type": "text", "text": "Ping ", "styles": {}},
                        mention(ids["member"]),
                    ],
                }
            },
            token=token,
        )
        assert created.status == 201, created.body
        # The editor reads what REST wrote as its own mention node.
        waited = await clients.editor_wait("ada", "blocknote", '"type":"mention"')
        assert waited["content"][1]["content"][1] == mention(ids["member"])
        [note] = await inbox_when(ctx, ids["member"], 1)
        assert note["actor_id"] == ids["editor"] and note["data"]["block_id"] == "r1"

        before = await get_content(api, setup)
        for bad, field in [
            ({"type": "mention", "props": {"user": 5}}, "content"),
            ({"type": "mention", "props": {"user": ids["member"], "x": 1}}, "content"),
            ({"type": "emoji", "props": {}}, "content"),
        ]:
            refused = await api.post(
                f"{DOCS}{setup.doc_id}/blocks/",
                {"block": {"type": "paragraph", "content": [bad]}},
                token=token,
            )
            assert refused.status == 400, refused.body
            assert any(f.startswith(field) for f in refused.body["error"]["fields"]), refused.body
        assert await get_content(api, setup) == before


async def test_a_duplicated_page_brings_its_mentions_silently(api, ctx, ws_port):
    setup, ids = await team_document(ctx)
    async with YjsNodeClients() as clients:
        await connected(clients, setup, ws_port, "ada")
        await clients.editor_write("ada", "blocknote", [paragraph("p1", mention(ids["member"]))])
        await inbox_when(ctx, ids["member"], 1)
    copy = await api.post(
        f"{DOCS}{setup.doc_id}/duplicate/", {}, token=setup.users["editor"].access_token
    )
    assert copy.status == 201, copy.body
    copied = dataclasses.replace(setup, doc_id=copy.body["id"])
    await scanned(ctx, copied)
    # Nobody typed the copy's mention: recorded, not notified again.
    seen = await mentions_repo.list_mentions(ctx.db, copied.doc_id)
    assert [(m.block_id, m.user_id, m.outcome) for m in seen] == [("p1", ids["member"], "silent")]
    assert len(await inbox(ctx, ids["member"])) == 1


async def test_typed_on_one_node_reaches_the_inbox_socket_on_another(
    api, ctx, settings, http_server_port
):
    setup, ids = await team_document(ctx)
    member = setup.users["member"]
    async with second_node(settings) as (node, _):
        sock = await InboxSocket.open(
            http_server_port[1], None, subprotocols=["collab", member.access_token]
        )
        await sock.ready()
        async with YjsNodeClients() as clients:
            token = setup.users["editor"].access_token
            await clients.connect("ada", ws_base(node.port), setup.doc_id, token)
            await clients.wait_synced("ada")
            await clients.editor_write(
                "ada", "blocknote", [paragraph("p1", "Over to ", mention(ids["member"]))]
            )
            created = await sock.frame("notification.created")
        sock.close()
    notification = created["event"]["notification"]
    assert (notification["kind"], notification["actor_id"]) == ("document.mention", ids["editor"])
    assert notification["data"]["excerpt"] == "Over to "


def test_mentions_are_found_in_links_and_table_cells_and_ids_are_canonical():
    user = "3F2504E0-4F89-11D3-9A0C-0305E82C3301"
    table = {
        "type": "tableContent",
        "rows": [{"cells": [{"type": "tableCell", "content": [mention(user)], "props": {}}]}],
    }
    link = {"type": "link", "href": "https://example.org", "content": [mention(user)]}
    blocks = [
        Block("t1", "table", {}, table),
        Block("p1", "paragraph", {}, [link, mention("ada"), {"type": "text", "text": "x"}]),
    ]
    found = body_mentions.mentions_in(blocks)
    assert set(found) == {("t1", user.lower()), ("p1", user.lower())}
    assert body_mentions.may_touch_mentions(
        b"..mention.."
    ) and not body_mentions.may_touch_mentions(b"typing")
