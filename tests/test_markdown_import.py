"""Markdown import (services/markdown_import.py, services/doc_import.py): a Markdown body becomes
a new BlockNote document; export → import → export gives the same Markdown and, for what
Markdown can say, the same block tree; bad input is a 400 (or 404/403/413) that creates nothing."""

from __future__ import annotations

from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import pytest

from services.block_ops import new_document_state
from services.markdown_import import MAX_IMPORT_BLOCKS, parse_markdown
from tests.realtime_support import DocSetup, document_with

pytestmark = pytest.mark.timeout(120)

GOLDEN = Path(__file__).parent / "golden" / "all_blocks.md"
DOCS = "/api/v1/documents/"

# Every block type Markdown can say, with nesting and every inline style.
EXPRESSIBLE: list[dict[str, Any]] = [
    {"id": "h", "type": "heading", "props": {"level": 2}, "content": "Plan"},
    {
        "id": "p",
        "type": "paragraph",
        "content": [
            {"type": "text", "text": "plain ", "styles": {}},
            {"type": "text", "text": "bold", "styles": {"bold": True}},
            {"type": "text", "text": " ", "styles": {}},
            {"type": "text", "text": "it", "styles": {"italic": True}},
            {"type": "text", "text": " ", "styles": {}},
            {"type": "text", "text": "gone", "styles": {"strike": True}},
            {"type": "text", "text": " ", "styles": {}},
            {"type": "text", "text": "under", "styles": {"underline": True}},
            {"type": "text", "text": " ", "styles": {}},
            {"type": "text", "text": "x = 1", "styles": {"code": True}},
            {"type": "text", "text": " a*b [c] #d\nnext line ", "styles": {}},
            {
                "type": "link",
                "href": "https://example.org/a?b=1&c=2",
                "content": [{"type": "text", "text": "link", "styles": {}}],
            },
        ],
    },
    {
        "id": "b1",
        "type": "bulletListItem",
        "content": "one",
        "children": [{"id": "b2", "type": "bulletListItem", "content": "one.one"}],
    },
    {"id": "k1", "type": "checkListItem", "props": {"checked": True}, "content": "done"},
    {"id": "k2", "type": "checkListItem", "content": "[x] not a box, text"},
    {"id": "n1", "type": "numberedListItem", "content": "first"},
    {
        "id": "n2",
        "type": "numberedListItem",
        "content": "second",
        "children": [{"id": "n3", "type": "paragraph", "content": "a paragraph in the item"}],
    },
    {"id": "q", "type": "quote", "content": "quoted"},
    {"id": "c", "type": "codeBlock", "props": {"language": "python"}, "content": "a = '```'\n"},
    {
        "id": "t",
        "type": "table",
        "content": {"type": "tableContent", "rows": [{"cells": ["A", "B"]}, {"cells": ["1", "2"]}]},
    },
    {"id": "i", "type": "image", "props": {"url": "https://example.org/c.png", "caption": "cat"}},
    {"id": "d", "type": "divider"},
    {"id": "e", "type": "paragraph", "content": "end"},
]


def import_url(setup: DocSetup, **params: Any) -> str:
    return f"/api/v1/workspaces/{setup.workspace_id}/import/?{urlencode(params)}"


async def import_text(api, setup: DocSetup, text: str | bytes, role: str = "owner", **params: Any):  # type: ignore[no-untyped-def]
    raw = text.encode() if isinstance(text, str) else text
    return await api.post(
        import_url(setup, **({"format": "markdown"} | params)),
        raw=raw,
        token=setup.users[role].access_token,
        headers={"Content-Type": "text/markdown; charset=utf-8"},
    )


async def markdown_of(api, setup: DocSetup, doc_id: str) -> str:  # type: ignore[no-untyped-def]
    got = await api.get(
        f"{DOCS}{doc_id}/export/?format=markdown", token=setup.users["owner"].access_token
    )
    assert got.status == 200, got.body
    return str(got.body)


def without_ids(blocks: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [
        {
            **{k: v for k, v in b.items() if k != "id"},
            "children": without_ids(b.get("children", [])),
        }
        for b in blocks
    ]


async def test_golden_markdown_round_trips(api, ctx):
    setup = await document_with(ctx)
    golden = GOLDEN.read_text()
    made = await import_text(api, setup, golden)
    assert made.status == 201, made.body
    assert made.body["title"] == "Launch / Q3"
    assert made.body["workspace_id"] == setup.workspace_id and made.body["version"] > 0
    assert await markdown_of(api, setup, made.body["id"]) == golden


async def test_export_import_export_keeps_markdown_and_block_tree(api, ctx):
    setup = await document_with(ctx)
    await ctx.doc_log.publish(
        setup.doc_id,
        new_document_state(EXPRESSIBLE, "prosemirror"),
        msg_id=f"seed:{setup.doc_id}",
        client="test",
        user="test",
    )
    exported = await markdown_of(api, setup, setup.doc_id)
    made = await import_text(api, setup, exported, parent_id=setup.doc_id, title="Copy")
    assert made.status == 201, made.body
    assert made.body["title"] == "Copy" and made.body["parent_id"] == setup.doc_id
    # The title line came in as a heading (a title was given); the rest is the same document.
    assert await markdown_of(api, setup, made.body["id"]) == "# Copy\n\n" + exported
    source = await api.get(f"{DOCS}{setup.doc_id}/", token=setup.users["owner"].access_token)
    imported = made.body["content"]["blocks"]
    assert imported[0]["content"][0]["text"] == "Doc"
    assert without_ids(imported[1:]) == without_ids(source.body["content"]["blocks"])
    blocks = await ctx.db.fetchval(
        "SELECT count(*) FROM blocks WHERE document_id = $1", made.body["id"]
    )
    assert blocks == 1 + 15  # the projection is written at once (the "Doc" heading, 15 blocks)


def test_parser_reads_what_markdown_means():
    parsed = parse_markdown(
        "# T\n\nA <u>u</u> <b>raw</b>\\\nB\n\n- \\[x\\] escaped\n- [X] Done\n\n"
        "> q1\n>\n> q2\n\nsee ![pic](p.png) here\n\n    indented code\n\n3. three\n",
        title_from_heading=True,
    )
    assert parsed.title == "T"
    para, bullet, task, quote, text_image, code, numbered = parsed.blocks
    assert para["content"] == [
        {"type": "text", "text": "A ", "styles": {}},
        {"type": "text", "text": "u", "styles": {"underline": True}},
        {"type": "text", "text": " <b>raw</b>\nB", "styles": {}},
    ]
    assert bullet["type"] == "bulletListItem"
    assert bullet["content"][0]["text"] == "[x] escaped"
    assert task["type"] == "checkListItem" and task["props"] == {"checked": True}
    assert quote["type"] == "quote" and quote["children"][0]["content"][0]["text"] == "q2"
    assert text_image["content"][1] == {
        "type": "link",
        "href": "p.png",
        "content": [{"type": "text", "text": "pic", "styles": {}}],
    }
    assert code["type"] == "codeBlock" and code["props"] == {"language": "text"}
    assert numbered["type"] == "numberedListItem"
    assert parse_markdown("", title_from_heading=True).blocks == []


async def test_bad_input_creates_nothing(api, ctx):
    setup = await document_with(ctx, "guest", "outsider")
    other = await document_with(ctx)
    count = "SELECT count(*) FROM documents WHERE workspace_id = $1"
    before = await ctx.db.fetchval(count, setup.workspace_id)
    for params, body in (
        ({"format": "docx"}, "x"),
        ({"format": ""}, "x"),
        ({"format": "mark\x00down"}, "x"),
        ({"title": "t" * 501}, "x"),
        ({"parent_id": "nope"}, "x"),
        ({"parent_id": other.doc_id}, "x"),
        ({}, b"caf\xe9"),
        ({}, "a\x00b"),
        ({}, "\n".join(["- a"] * (MAX_IMPORT_BLOCKS + 1))),
        # One table block, but its cells are the cost: they count.
        ({}, "|a|b|\n|-|-|\n" + "|1|2|\n" * (MAX_IMPORT_BLOCKS // 2)),
    ):
        got = await import_text(api, setup, body, **params)
        assert got.status in (400, 404), (params, got.body)
        if got.status == 404:  # a parent the caller cannot see is named as not found
            assert params.get("parent_id") == other.doc_id
    no_format = await api.post(
        import_url(setup),
        raw=b"x",
        token=setup.users["owner"].access_token,
        headers={"Content-Type": "text/markdown"},
    )
    assert no_format.status == 400
    as_json = await api.post(
        import_url(setup, format="markdown"), {"text": "x"}, token=setup.users["owner"].access_token
    )
    assert as_json.status == 400 and "Content-Type" in as_json.body["error"]["message"]
    too_big = await import_text(api, setup, "a" * (ctx.settings.max_body_bytes + 1))
    assert too_big.status == 413
    # A body within the limit whose document would not fit in one log entry: a 400 saying so
    # (was a 500 from NATS' payload limit, after the document row was written).
    frame = ctx.settings.max_frame_bytes
    assert frame + 16 < ctx.settings.max_body_bytes
    over_frame = await import_text(api, setup, "```\n" + "a" * frame + "\n```\n")
    assert over_frame.status == 400, over_frame.body
    assert "bytes" in over_frame.body["error"]["fields"]["_body"][0]
    assert (await import_text(api, setup, "x", "guest")).status == 403
    assert (await import_text(api, setup, "x", "outsider")).status == 404
    unknown = await api.post(
        "/api/v1/workspaces/0b7c1e0e-6c0a-4c33-9b7e-5d8e8b1f0a11/import/?format=markdown",
        raw=b"x",
        token=setup.users["owner"].access_token,
        headers={"Content-Type": "text/markdown"},
    )
    assert unknown.status == 404
    assert await ctx.db.fetchval(count, setup.workspace_id) == before
