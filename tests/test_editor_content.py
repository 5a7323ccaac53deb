"""Documents as real editors write them: BlockNote (@blocknote/core) and Tiptap (StarterKit schema)
documents written by y-prosemirror into a stock y-websocket client connected to our server, then
read back over REST, in versions and in the projection, and restored (clients converge to the old
content; an unchanged restore says `applied: false`). The oracle for "the server reads what the
editor wrote" is the editor's own reader (BlockNote's `yXmlFragmentToBlocks`, y-prosemirror's
`yXmlFragmentToProsemirrorJSON`) run on the same doc."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from models.repo import doc_content as content_repo
from services.documents import refresh_projection_now
from tests.realtime_support import DocSetup, document_with, ws_base
from tests.yjs_client import YjsNodeClients

pytestmark = pytest.mark.timeout(120)

DOCS = "/api/v1/documents/"

BLOCKNOTE_DOC: list[dict[str, Any]] = [
    {"id": "h1", "type": "heading", "props": {"level": 2}, "content": "Plan"},
    {
        "id": "p1",
        "type": "paragraph",
        "content": [
            {"type": "text", "text": "Call ", "styles": {}},
            {"type": "mention", "props": {"user": "ada"}},
            {"type": "text", "text": " about ", "styles": {"bold": True, "textColor": "red"}},
            {"type": "link", "href": "https://example.org", "content": "the spec"},
        ],
        "children": [
            {"id": "c1", "type": "checkListItem", "props": {"checked": True}, "content": "done"},
            {"id": "c2", "type": "bulletListItem", "content": "line one\nline two"},
        ],
    },
    {
        "id": "t1",
        "type": "table",
        "content": {"type": "tableContent", "rows": [{"cells": ["a", "b"]}]},
    },
    {"id": "i1", "type": "image", "props": {"url": "https://example.org/a.png"}},
]

TIPTAP_DOC = {
    "type": "doc",
    "content": [
        {"type": "heading", "attrs": {"level": 1}, "content": [{"type": "text", "text": "Notes"}]},
        {
            "type": "paragraph",
            "content": [
                {"type": "text", "text": "plain "},
                {"type": "text", "text": "bold", "marks": [{"type": "bold"}]},
            ],
        },
        {
            "type": "bulletList",
            "content": [
                {
                    "type": "listItem",
                    "content": [
                        {"type": "paragraph", "content": [{"type": "text", "text": "one"}]}
                    ],
                }
            ],
        },
    ],
}


def without_text(blocks: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Our block JSON minus the `text` convenience field: BlockNote's own JSON shape."""
    return [
        {**{k: v for k, v in b.items() if k != "text"}, "children": without_text(b["children"])}
        for b in blocks
    ]


def mark_types(node: Any) -> Any:
    """ProseMirror JSON with mark lists compared as sets of types (JS keeps insertion order)."""
    if isinstance(node, list):
        return [mark_types(n) for n in node]
    if isinstance(node, dict):
        out = {k: mark_types(v) for k, v in node.items() if k != "marks"}
        if "marks" in node:
            out["marks"] = sorted(m["type"] for m in node["marks"])
        return out
    return node


async def connected(clients: YjsNodeClients, setup: DocSetup, ws_port: int, *names: str) -> None:
    token = setup.users["editor"].access_token
    for name in names:
        await clients.connect(name, ws_base(ws_port), setup.doc_id, token)
    await asyncio.gather(*(clients.wait_synced(name) for name in names))


async def get_content(api, setup: DocSetup) -> dict[str, Any]:
    got = await api.get(f"{DOCS}{setup.doc_id}/", token=setup.users["owner"].access_token)
    assert got.status == 200, got.body
    return got.body["content"]


async def content_when(api, setup: DocSetup, check) -> dict[str, Any]:  # type: ignore[no-untyped-def]
    """The REST content once `check(content)` holds: the client's update is acked by the server
    before it is in the log, so a GET right after a local edit may be one update behind."""
    for _ in range(100):
        content = await get_content(api, setup)
        if check(content):
            return content
        await asyncio.sleep(0.05)
    raise AssertionError(f"content never matched: {content}")


async def save_version(api, setup: DocSetup, name: str) -> dict[str, Any]:
    saved = await api.post(
        f"{DOCS}{setup.doc_id}/versions/", {"name": name}, token=setup.users["owner"].access_token
    )
    assert saved.status == 201, saved.body
    return saved.body


async def restore(api, setup: DocSetup, version_id: str):  # type: ignore[no-untyped-def]
    return await api.post(
        f"{DOCS}{setup.doc_id}/versions/{version_id}/restore/",
        token=setup.users["owner"].access_token,
    )


async def test_blocknote_document_over_rest_versions_projection_and_restore(api, ctx, ws_port):
    setup = await document_with(ctx, "editor")
    async with YjsNodeClients() as clients:
        await connected(clients, setup, ws_port, "ada", "bob")
        await clients.editor_write("ada", "blocknote", BLOCKNOTE_DOC)
        await clients.editor_wait("bob", "blocknote", "line two")
        seen_by_blocknote = await clients.editor_read("bob", "blocknote")

        content = await content_when(api, setup, lambda c: len(c["blocks"]) == 4)
        assert (content["fragment"], content["layout"]) == ("prosemirror", "blocknote")
        assert without_text(content["blocks"]) == seen_by_blocknote
        p1 = content["blocks"][1]
        assert p1["text"] == "Call  about the spec"
        assert p1["content"][1] == {"type": "mention", "props": {"user": "ada"}}
        assert content["roots"]["prosemirror"]["type"] == "xml_fragment"

        await refresh_projection_now(ctx, setup.doc_id)
        rows = {r["block_id"]: r for r in await content_repo.list_blocks(ctx.db, setup.doc_id)}
        assert set(rows) == {"h1", "p1", "c1", "c2", "t1", "i1"}
        assert (rows["c2"]["parent_id"], rows["c2"]["depth"], rows["c2"]["path"]) == (
            "p1",
            1,
            ["p1", "c2"],
        )
        assert rows["c2"]["text"] == "line one\nline two"
        assert rows["h1"]["content"]["props"]["level"] == 2

        version = await save_version(api, setup, "first draft")
        got = await api.get(
            f"{DOCS}{setup.doc_id}/versions/{version['id']}/",
            token=setup.users["owner"].access_token,
        )
        assert without_text(got.body["content"]["blocks"]) == seen_by_blocknote

        # Both users edit: ada types in p1, bob rewrites the document to two blocks.
        await clients.editor_append("ada", "p1", " today")
        await clients.editor_wait("bob", "blocknote", " today")
        await clients.editor_write(
            "bob", "blocknote", [{"id": "x1", "type": "quote", "content": "all new"}]
        )
        await clients.editor_wait("ada", "blocknote", "all new")
        await content_when(api, setup, lambda c: [b["id"] for b in c["blocks"]] == ["x1"])

        restored = await restore(api, setup, version["id"])
        assert restored.status == 201 and restored.body["applied"] is True, restored.body
        for name in ("ada", "bob"):
            waited = await clients.editor_wait(name, "blocknote", "line two")
            assert waited["content"] == seen_by_blocknote  # the editors converge to the version
        content = await get_content(api, setup)
        assert without_text(content["blocks"]) == seen_by_blocknote

        again = await restore(api, setup, version["id"])
        assert again.status == 200, again.body
        assert again.body == {"restored_from": version["id"], "applied": False, "version": None}

        # Editing goes on on top of the restored blocks.
        await clients.editor_append("bob", "h1", "!")
        await clients.editor_wait("ada", "blocknote", "Plan!")


async def test_tiptap_document_in_its_own_fragment(api, ctx, ws_port):
    setup = await document_with(ctx, "editor")
    async with YjsNodeClients() as clients:
        await connected(clients, setup, ws_port, "tip", "tap")
        await clients.editor_write("tip", "tiptap", TIPTAP_DOC, fragment="default")
        await clients.editor_wait("tap", "tiptap", "one", fragment="default")
        seen_by_tiptap = await clients.editor_read("tap", "tiptap", fragment="default")

        content = await content_when(api, setup, lambda c: len(c["blocks"]) == 3)
        # No fragment configured: the only fragment there is, `default`, holds the blocks.
        assert (content["fragment"], content["layout"]) == ("default", "prosemirror")
        assert mark_types(content["roots"]["default"]["value"]) == mark_types(seen_by_tiptap)
        heading, paragraph, bullets = content["blocks"]
        assert (heading["id"], heading["type"], heading["props"]) == ("0", "heading", {"level": 1})
        assert paragraph["content"][1] == {"type": "text", "text": "bold", "styles": {"bold": True}}
        assert bullets["children"][0]["children"][0]["text"] == "one"

        version = await save_version(api, setup, "tiptap")
        edited = {
            "type": "doc",
            "content": [{"type": "paragraph", "content": [{"type": "text", "text": "gone"}]}],
        }
        await clients.editor_write("tap", "tiptap", edited, fragment="default")
        await clients.editor_wait("tip", "tiptap", "gone", fragment="default")
        await content_when(api, setup, lambda c: c["blocks"][0]["text"] == "gone")

        restored = await restore(api, setup, version["id"])
        assert restored.status == 201 and restored.body["applied"] is True, restored.body
        for name in ("tip", "tap"):
            waited = await clients.editor_wait(name, "tiptap", "Notes", fragment="default")
            assert waited["content"] == seen_by_tiptap

        # The document names its fragment explicitly from now on (PATCH), same content.
        patched = await api.patch(
            f"{DOCS}{setup.doc_id}/",
            {"fragment": "default"},
            token=setup.users["owner"].access_token,
        )
        assert patched.status == 200 and patched.body["fragment"] == "default"
        assert patched.body["content"]["blocks"][0]["text"] == "Notes"


async def test_a_fragment_under_a_reserved_name_restores(api, ctx, ws_port):
    """`text` is what plain clients use for a Y.Text; an editor may name its fragment so."""
    setup = await document_with(ctx, "editor")
    async with YjsNodeClients() as clients:
        await connected(clients, setup, ws_port, "ada", "bob")
        await clients.editor_write("ada", "blocknote", BLOCKNOTE_DOC[:1], fragment="text")
        await clients.editor_wait("bob", "blocknote", "Plan", fragment="text")
        await content_when(api, setup, lambda c: "text" in c["roots"])
        version = await save_version(api, setup, "v")
        await clients.editor_write(
            "bob", "blocknote", [{"id": "z", "type": "paragraph"}], fragment="text"
        )
        await clients.editor_wait("ada", "blocknote", '"z"', fragment="text")
        await content_when(api, setup, lambda c: "Plan" not in str(c["roots"]["text"]))
        restored = await restore(api, setup, version["id"])
        assert restored.status == 201, restored.body
        waited = await clients.editor_wait("bob", "blocknote", "Plan", fragment="text")
        assert [b["id"] for b in waited["content"]] == ["h1"]
