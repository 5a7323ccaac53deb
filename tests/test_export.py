"""Export (services/export.py): a document holding every BlockNote block type, written by a live
BlockNote editor, exported as Markdown and HTML (golden files) and PDF (its text layer, read with
pypdf); point-in-time exports of a version and of a stream sequence match that moment's
content; comments as footnotes; the policy and bad input answer as JSON errors."""

from __future__ import annotations

import asyncio
import io
import os
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import pypdf
import pytest

from services.block_ops import new_document_state
from services.documents import refresh_projection_now
from tests.comments_support import COMMENTS, THREADS, body, start_thread
from tests.realtime_support import DocSetup, document_with
from tests.test_editor_content import connected
from tests.yjs_client import YjsNodeClients

pytestmark = pytest.mark.timeout(120)

GOLDEN = Path(__file__).parent / "golden"
# COLLAB_UPDATE_GOLDEN=1 rewrites the golden files from the current output (review the diff).
UPDATE_GOLDEN = os.environ.get("COLLAB_UPDATE_GOLDEN") == "1"
DOCS = "/api/v1/documents/"

ALL_BLOCKS: list[dict[str, Any]] = [
    {"id": "h1", "type": "heading", "props": {"level": 1}, "content": "Launch plan"},
    {"id": "h2", "type": "heading", "props": {"level": 2}, "content": "Goals"},
    {"id": "h3", "type": "heading", "props": {"level": 3}, "content": "Details"},
    {
        "id": "p1",
        "type": "paragraph",
        "content": [
            {"type": "text", "text": "Ask ", "styles": {}},
            {"type": "mention", "props": {"user": "MENTIONED"}},
            {"type": "text", "text": " about ", "styles": {"bold": True}},
            {"type": "text", "text": "the", "styles": {"italic": True}},
            {"type": "text", "text": " ", "styles": {}},
            {"type": "link", "href": "https://example.org/spec", "content": "spec"},
            {"type": "text", "text": ", x*y ", "styles": {}},
            {"type": "text", "text": "old", "styles": {"strike": True}},
            {"type": "text", "text": " ", "styles": {}},
            {"type": "text", "text": "run()", "styles": {"code": True}},
        ],
    },
    {
        "id": "p2",
        "type": "paragraph",
        "content": [
            {"type": "text", "text": "under", "styles": {"underline": True}},
            {"type": "text", "text": " line one\nline two", "styles": {}},
        ],
    },
    {
        "id": "b1",
        "type": "bulletListItem",
        "content": "Fruit",
        "children": [
            {"id": "b2", "type": "bulletListItem", "content": "Apple"},
            {"id": "b3", "type": "bulletListItem", "content": "Pear"},
        ],
    },
    {"id": "n1", "type": "numberedListItem", "content": "First"},
    {
        "id": "n2",
        "type": "numberedListItem",
        "content": "Second",
        "children": [{"id": "n3", "type": "numberedListItem", "content": "Second point one"}],
    },
    {"id": "c1", "type": "checkListItem", "props": {"checked": True}, "content": "Book room"},
    {
        "id": "c2",
        "type": "checkListItem",
        "props": {"checked": False},
        "content": "Send invites",
        "children": [{"id": "c3", "type": "checkListItem", "content": "Guests"}],
    },
    {
        "id": "t1",
        "type": "toggleListItem",
        "content": "More",
        "children": [{"id": "t2", "type": "paragraph", "content": "Hidden detail"}],
    },
    {"id": "q1", "type": "quote", "content": "Ship it"},
    {
        "id": "k1",
        "type": "codeBlock",
        "props": {"language": "python"},
        "content": "def f():\n    return 1",
    },
    {
        "id": "tb",
        "type": "table",
        "content": {
            "type": "tableContent",
            "rows": [{"cells": ["Name", "Qty"]}, {"cells": ["Apples", "3"]}],
        },
    },
    {
        "id": "i1",
        "type": "image",
        "props": {"url": "https://example.org/cat.png", "caption": "A cat"},
    },
    {"id": "f1", "type": "file", "props": {"url": "https://example.org/a.pdf", "name": "a.pdf"}},
    {
        "id": "v1",
        "type": "video",
        "props": {"url": "https://example.org/demo.mp4", "caption": "Demo"},
    },
    {
        "id": "a1",
        "type": "audio",
        "props": {"url": "https://example.org/talk.mp3", "name": "talk.mp3"},
    },
    {"id": "d1", "type": "divider"},
    {"id": "e1", "type": "paragraph", "content": "The end"},
]


def export_url(setup: DocSetup, **params: Any) -> str:
    return f"{DOCS}{setup.doc_id}/export/?{urlencode(params)}"


async def document_seq(api, setup: DocSetup) -> int:  # type: ignore[no-untyped-def]
    got = await api.get(f"{DOCS}{setup.doc_id}/", token=setup.users["owner"].access_token)
    return int(got.body["version"])


async def wait_seq_above(api, setup: DocSetup, seq: int) -> int:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + 10
    while (now := await document_seq(api, setup)) <= seq:
        assert time.monotonic() < deadline, "the edit never reached the log"
        await asyncio.sleep(0.05)
    return now


def with_mention(blocks: list[dict[str, Any]], user_id: str) -> list[dict[str, Any]]:
    def named(block: dict[str, Any]) -> dict[str, Any]:
        if block["id"] != "p1":
            return block
        content = [
            {**run, "props": {"user": user_id}} if run.get("type") == "mention" else run
            for run in block["content"]
        ]
        return {**block, "content": content}

    return [named(block) for block in blocks]


async def sub_page(ctx, setup: DocSetup, title: str, **columns: Any) -> str:  # type: ignore[no-untyped-def]
    return str(
        await ctx.db.fetchval(
            "INSERT INTO documents (workspace_id, parent_id, title, created_by, is_private,"
            " deleted_at) VALUES ($1, $2, $3, $4, $5, $6) RETURNING id",
            setup.workspace_id,
            setup.doc_id,
            title,
            setup.users["owner"].id,
            columns.get("is_private"),
            columns.get("deleted_at"),
        )
    )


def golden(body: str, child_id: str) -> str:
    """The export with the sub-page's (random) id and the node's address made stable."""
    return body.replace(child_id, "CHILD_ID").replace("http://127.0.0.1:8000", "BASE")


async def written_document(api, ctx, ws_port) -> tuple[DocSetup, str]:  # type: ignore[no-untyped-def]
    """The every-block-type document, with a sub-page (its id returned) and a deleted one."""
    setup = await document_with(ctx, "editor", "viewer", "guest", "outsider")
    await ctx.db.execute("UPDATE documents SET title = 'Launch / Q3' WHERE id = $1", setup.doc_id)
    child_id = await sub_page(ctx, setup, "Budget *draft*")
    await sub_page(ctx, setup, "Gone", deleted_at=datetime.now(UTC))
    await ctx.db.execute(
        "UPDATE users SET display_name = 'Ada Lovelace' WHERE id = $1", setup.users["viewer"].id
    )
    async with YjsNodeClients() as clients:
        await connected(clients, setup, ws_port, "ada")
        await clients.editor_write(
            "ada", "blocknote", with_mention(ALL_BLOCKS, setup.users["viewer"].id)
        )
        await wait_seq_above(api, setup, 0)
    return setup, child_id


async def test_markdown_html_and_pdf_of_every_block_type(api, ctx, ws_port):
    setup, child_id = await written_document(api, ctx, ws_port)
    token = setup.users["viewer"].access_token

    md = await api.get(export_url(setup, format="markdown"), token=token)
    assert md.status == 200, md.body
    assert md.headers["Content-Type"] == "text/markdown; charset=utf-8"
    assert md.headers["Content-Disposition"].startswith('attachment; filename="Launch-Q3.md"')
    if UPDATE_GOLDEN:
        (GOLDEN / "all_blocks.md").write_text(golden(md.body, child_id))
    assert golden(md.body, child_id) == (GOLDEN / "all_blocks.md").read_text()

    page = await api.get(export_url(setup, format="html"), token=token)
    assert page.status == 200, page.body
    assert page.headers["Content-Type"] == "text/html; charset=utf-8"
    if UPDATE_GOLDEN:
        (GOLDEN / "all_blocks.html").write_text(golden(page.body, child_id))
    assert golden(page.body, child_id) == (GOLDEN / "all_blocks.html").read_text()

    pdf = await api.client.fetch(
        export_url(setup, format="pdf"), headers={"Authorization": f"Bearer {token}"}
    )
    assert pdf.headers["Content-Type"] == "application/pdf"
    assert pdf.body.startswith(b"%PDF-")
    reader = pypdf.PdfReader(io.BytesIO(pdf.body))
    text = " ".join(p.extract_text() for p in reader.pages)
    for phrase in (
        "Launch / Q3",
        "Launch plan",
        "@Ada Lovelace",
        "Second point one",
        "Book room",
        "return 1",
        "Apples",
        "Ship it",
        "The end",
        "Demo",
        "Budget *draft*",
    ):
        assert phrase in text, phrase
    assert "Gone" not in text


async def test_sub_pages_listed_are_those_the_caller_may_view(api, ctx):
    setup = await document_with(ctx, "editor")
    await sub_page(ctx, setup, "Shared plan")
    await sub_page(ctx, setup, "Owner notes", is_private=True)
    await sub_page(ctx, setup, "Gone", deleted_at=datetime.now(UTC))
    seen = {}
    for role in ("owner", "editor"):
        got = await api.get(
            export_url(setup, format="markdown"), token=setup.users[role].access_token
        )
        assert got.status == 200, got.body
        seen[role] = [line for line in got.body.splitlines() if line.startswith("- [")]
    assert [line.split("]")[0] for line in seen["owner"]] == ["- [Shared plan", "- [Owner notes"]
    assert [line.split("]")[0] for line in seen["editor"]] == ["- [Shared plan"]
    assert seen["editor"][0].endswith("/export/?format=markdown)")


async def test_point_in_time_exports_match_that_moment(api, ctx, ws_port):
    setup = await document_with(ctx, "editor")
    token = setup.users["owner"].access_token
    async with YjsNodeClients() as clients:
        await connected(clients, setup, ws_port, "ada")
        await clients.editor_write(
            "ada", "blocknote", [{"id": "a", "type": "paragraph", "content": "first draft"}]
        )
        first_seq = await wait_seq_above(api, setup, 0)
        named = await api.post(f"{DOCS}{setup.doc_id}/versions/", {"name": "draft"}, token=token)
        assert named.status == 201, named.body
        await clients.editor_append("ada", "a", " revised")
        second_seq = await wait_seq_above(api, setup, first_seq)

    now = await api.get(export_url(setup, format="markdown"), token=token)
    assert "first draft revised" in now.body
    assert now.headers["X-Collab-Seq"] == str(second_seq)
    for params in ({"version": named.body["id"]}, {"seq": first_seq}):
        old = await api.get(export_url(setup, format="markdown", **params), token=token)
        assert old.status == 200, old.body
        assert old.body == "# Doc\n\nfirst draft\n", params
    empty = await api.get(export_url(setup, format="markdown", seq=0), token=token)
    assert empty.body == "# Doc\n"


async def test_policy_and_bad_input(api, ctx):
    setup = await document_with(ctx, "viewer", "guest", "outsider")
    assert (await api.get(export_url(setup, format="html"))).status == 401
    guest = await api.get(export_url(setup, format="html"), token=setup.users["guest"].access_token)
    assert guest.status == 403 and guest.error_code == "forbidden"
    outsider = setup.users["outsider"].access_token
    assert (await api.get(export_url(setup, format="html"), token=outsider)).status == 404
    token = setup.users["viewer"].access_token
    for params in (
        {},
        {"format": "docx"},
        {"format": "pdf", "seq": "-1"},
        {"format": "pdf", "seq": "x"},
        {"format": "pdf", "version": "nope"},
        {"format": "pdf", "seq": "0", "version": "0b7c1e0e-6c0a-4c33-9b7e-5d8e8b1f0a11"},
        {"format": "markdown", "seq": "999999"},
    ):
        got = await api.get(export_url(setup, **params), token=token)
        assert got.status == 400 and got.error_code == "validation_error", (params, got.body)
    missing = await api.get(
        export_url(setup, format="markdown", version="0b7c1e0e-6c0a-4c33-9b7e-5d8e8b1f0a11"),
        token=token,
    )
    assert missing.status == 404


async def test_comments_as_footnotes(api, ctx):
    setup = await document_with(ctx, "editor")
    for role, name in (("owner", "Olga"), ("editor", "Ed")):
        await ctx.db.execute(
            "UPDATE users SET display_name = $2 WHERE id = $1", setup.users[role].id, name
        )
    blocks = [
        {"id": "p", "type": "paragraph", "content": "Hello"},
        {"id": "c", "type": "codeBlock", "props": {"language": "python"}, "content": "x = 1"},
    ]
    state = new_document_state(blocks, "prosemirror")
    await ctx.doc_log.publish(setup.doc_id, state, msg_id="seed", client="test", user="test")
    await refresh_projection_now(ctx, setup.doc_id)
    owner, editor = setup.users["owner"].access_token, setup.users["editor"].access_token
    threads = f"{DOCS}{setup.doc_id}/threads/"
    first = await start_thread(api, threads, owner, "Looks *good*", anchor={"block_id": "p"})
    reply = await api.post(
        f"{THREADS}{first['id']}/comments/", {"body": body("Agreed\nfully")}, token=editor
    )
    assert reply.status == 201, reply.body
    assert (await api.post(f"{THREADS}{first['id']}/resolve/", token=owner)).status == 200
    await start_thread(api, threads, editor, "Why 1?", anchor={"block_id": "c"})
    await start_thread(api, threads, owner, "General note")
    gone = await start_thread(api, threads, owner, "Deleted", anchor={"block_id": "p"})
    deleted = await api.delete(f"{COMMENTS}{gone['comments'][0]['id']}/", token=owner)
    assert deleted.status == 200

    md = await api.get(export_url(setup, format="markdown", comments="true"), token=editor)
    assert md.status == 200, md.body
    assert md.body == (
        "# Doc\n\nHello[^1]\n\n```python\nx = 1\n```\n\n[^2]\n\n"
        "[^1]: **Olga**: Looks \\*good\\*  \n    **Ed**: Agreed  \n    fully *(resolved)*\n\n"
        "[^2]: **Ed**: Why 1?\n\n[^3]: **Olga**: General note\n"
    )
    plain = await api.get(export_url(setup, format="markdown"), token=editor)
    assert "[^" not in plain.body and "Olga" not in plain.body
    page = await api.get(export_url(setup, format="html", comments="true"), token=editor)
    assert '<p>Hello<sup class="footnote-ref"><a href="#fn-1" id="fnref-1">1</a></sup></p>' in (
        page.body
    )
    assert '<li id="fn-1"><p><strong>Olga</strong>: Looks *good*</p>' in page.body
    assert "<p><strong>Ed</strong>: Agreed<br>fully</p> <em>(resolved)</em>" in page.body
    stored = await api.post(
        f"{DOCS}{setup.doc_id}/exports/", {"format": "markdown", "comments": True}, token=editor
    )
    assert stored.status == 201 and stored.body["comments"] is True, stored.body
    file = await api.get(stored.body["download_url"], token=editor)
    assert file.body == md.body
    bad = await api.get(export_url(setup, format="markdown", comments="maybe"), token=editor)
    assert bad.status == 400 and bad.error_code == "validation_error"
