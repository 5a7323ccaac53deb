"""REST block edits into the live document, seen by a real BlockNote client (@blocknote/core over
the stock y-websocket provider): get, create, update, move, delete; each reaches the connected
editor within a second and converges with what the editor types at the same time; bad input is a
clear error that changes nothing; retries with the same Idempotency-Key apply once."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from models.repo import doc_content as content_repo
from tests.realtime_support import DocSetup, document_with
from tests.test_editor_content import BLOCKNOTE_DOC, connected, content_when, get_content
from tests.yjs_client import YjsNodeClients

pytestmark = pytest.mark.timeout(120)

DOCS = "/api/v1/documents/"


def blocks_url(setup: DocSetup, *parts: str) -> str:
    return f"{DOCS}{setup.doc_id}/blocks/" + "".join(f"{p}/" for p in parts)


def ids(blocks: list[dict[str, Any]]) -> list[Any]:
    return [[b["id"], ids(b["children"])] if b["children"] else b["id"] for b in blocks]


async def test_rest_block_edits_reach_a_live_blocknote_editor(api, ctx, ws_port):
    setup = await document_with(ctx, "editor")
    token = setup.users["editor"].access_token
    async with YjsNodeClients() as clients:
        await connected(clients, setup, ws_port, "ada")
        await clients.editor_write("ada", "blocknote", BLOCKNOTE_DOC)
        await content_when(api, setup, lambda c: len(c["blocks"]) == 4)

        got = await api.get(blocks_url(setup, "c2"), token=token)
        assert got.status == 200, got.body
        assert (got.body["parent_id"], got.body["position"]) == ("p1", 1)
        assert got.body["block"]["text"] == "line one\nline two"

        created = await api.post(
            blocks_url(setup),
            {
                "block": {
                    "id": "r1",
                    "type": "heading",
                    "props": {"level": 3},
                    "content": [{"type": "text", "text": "From REST", "styles": {"italic": True}}],
                },
                "after": "h1",
            },
            token=token,
        )
        assert created.status == 201, created.body
        assert created.body["block"]["props"]["level"] == 3 and created.body["applied"] is True
        waited = await clients.editor_wait("ada", "blocknote", "From REST", timeout_s=1.0)
        assert [b["id"] for b in waited["content"]] == ["h1", "r1", "p1", "t1", "i1"]
        assert waited["content"][1]["content"] == [
            {"type": "text", "text": "From REST", "styles": {"italic": True}}
        ]

        patched = await api.patch(
            blocks_url(setup, "r1"),
            {"props": {"textAlignment": "center"}, "content": "Renamed"},
            token=token,
        )
        assert patched.status == 200, patched.body
        assert patched.body["block"]["props"]["level"] == 3  # merged, not replaced
        waited = await clients.editor_wait("ada", "blocknote", "Renamed", timeout_s=1.0)
        assert waited["content"][1]["props"]["textAlignment"] == "center"

        moved = await api.post(
            blocks_url(setup, "r1", "move"), {"parent_id": "p1", "before": "c1"}, token=token
        )
        assert moved.status == 200, moved.body
        assert (moved.body["parent_id"], moved.body["position"]) == ("p1", 0)
        await clients.editor_wait("ada", "blocknote", '"children":[{"id":"r1"', timeout_s=1.0)

        deleted = await api.delete(blocks_url(setup, "c1"), token=token)
        assert deleted.status == 204, deleted.body
        waited = await clients.editor_wait(
            "ada", "blocknote", '"children":[{"id":"r1"', timeout_s=1.0
        )
        assert ids(waited["content"]) == ["h1", ["p1", ["r1", "c2"]], "t1", "i1"]

        # The projection follows REST writes at once.
        rows = {r["block_id"]: r for r in await content_repo.list_blocks(ctx.db, setup.doc_id)}
        assert "c1" not in rows and rows["r1"]["parent_id"] == "p1"
        assert rows["r1"]["text"] == "Renamed"


async def test_rest_edits_converge_with_concurrent_typing(api, ctx, ws_port):
    setup = await document_with(ctx, "editor")
    token = setup.users["editor"].access_token
    async with YjsNodeClients() as clients:
        await connected(clients, setup, ws_port, "ada", "bob")
        await clients.editor_write("ada", "blocknote", BLOCKNOTE_DOC)
        await clients.editor_wait("bob", "blocknote", "line two")

        async def type_away() -> None:
            for n in range(8):
                await clients.editor_append("ada", "p1", f" k{n}")

        async def rest_edits() -> None:
            for n in range(4):
                response = await api.patch(
                    blocks_url(setup, "p1"),
                    {"props": {"backgroundColor": f"c{n}"}},
                    token=token,
                )
                assert response.status == 200, response.body
                created = await api.post(
                    blocks_url(setup),
                    {"block": {"id": f"n{n}", "type": "paragraph", "content": f"rest {n}"}},
                    token=token,
                )
                assert created.status == 201, created.body

        await asyncio.gather(type_away(), rest_edits())
        final = await clients.editor_wait("bob", "blocknote", " k7")
        await clients.editor_wait("bob", "blocknote", "rest 3")
        for name in ("ada", "bob"):
            waited = await clients.editor_wait(name, "blocknote", "rest 3")
            waited = await clients.editor_wait(name, "blocknote", '"backgroundColor":"c3"')
            final = waited["content"]
            p1 = next(b for b in final if b["id"] == "p1")
            typed = "".join(i.get("text", "") for i in p1["content"] if i["type"] == "text")
            assert all(f" k{n}" in typed for n in range(8)), typed  # no keystroke lost
            assert [b["id"] for b in final][-4:] == ["n0", "n1", "n2", "n3"]
        assert await clients.editor_read("ada", "blocknote") == await clients.editor_read(
            "bob", "blocknote"
        )
        content = await content_when(
            api, setup, lambda c: " k7" in str(c["blocks"]) and "rest 3" in str(c["blocks"])
        )
        assert [b["id"] for b in content["blocks"]][-4:] == ["n0", "n1", "n2", "n3"]


async def test_bad_block_input_is_refused_and_changes_nothing(api, ctx, ws_port):
    setup = await document_with(ctx, "editor", "viewer")
    token = setup.users["editor"].access_token
    async with YjsNodeClients() as clients:
        await connected(clients, setup, ws_port, "ada")
        await clients.editor_write("ada", "blocknote", BLOCKNOTE_DOC)
        before = await content_when(api, setup, lambda c: len(c["blocks"]) == 4)
    version = (await api.get(f"{DOCS}{setup.doc_id}/", token=token)).body["version"]

    cases = [
        ("post", blocks_url(setup), {"block": {"type": "nope"}}, 400, "type"),
        (
            "post",
            blocks_url(setup),
            {"block": {"type": "heading", "props": {"level": "two"}}},
            400,
            "props.level",
        ),
        ("patch", blocks_url(setup, "h1"), {"props": {"level": 9}}, 400, "props.level"),
        ("patch", blocks_url(setup, "h1"), {"props": {"colour": "x"}}, 400, "props"),
        ("patch", blocks_url(setup, "i1"), {"content": "images hold none"}, 400, "content"),
        ("patch", blocks_url(setup, "missing"), {"content": "x"}, 404, "block_id"),
        ("post", blocks_url(setup, "p1", "move"), {"parent_id": "c1"}, 400, "parent_id"),
        ("post", blocks_url(setup, "p1", "move"), {"parent_id": "p1"}, 400, "parent_id"),
        ("post", blocks_url(setup, "h1", "move"), {"after": "c1"}, 400, "after"),
        ("post", blocks_url(setup, "h1", "move"), {"after": "zz"}, 404, "after"),
        (
            "post",
            blocks_url(setup),
            {"block": {"type": "paragraph"}, "after": "h1", "before": "p1"},
            400,
            "before",
        ),
        ("post", blocks_url(setup), {"block": {"id": "h1", "type": "paragraph"}}, 409, "id"),
        ("post", blocks_url(setup), {"block": {"type": "paragraph"}, "colour": 1}, 400, "colour"),
        ("delete", blocks_url(setup, "missing"), None, 404, "block_id"),
    ]
    for method, url, body, status, field in cases:
        call = getattr(api, method)
        response = await (call(url, token=token) if body is None else call(url, body, token=token))
        assert response.status == status, (url, body, response.body)
        assert field in response.body["error"]["fields"], (url, body, response.body)

    viewer = setup.users["viewer"].access_token
    refused = await api.patch(blocks_url(setup, "h1"), {"content": "x"}, token=viewer)
    assert refused.status == 403

    after = await get_content(api, setup)
    assert after == before
    assert (await api.get(f"{DOCS}{setup.doc_id}/", token=token)).body["version"] == version


async def test_block_edits_need_a_blocknote_fragment(api, ctx, ws_port):
    setup = await document_with(ctx, "editor")
    token = setup.users["editor"].access_token
    async with YjsNodeClients() as clients:
        await connected(clients, setup, ws_port, "tip")
        doc = {"type": "doc", "content": [{"type": "paragraph"}]}
        await clients.editor_write("tip", "tiptap", doc, fragment="prosemirror")
        await content_when(api, setup, lambda c: c["layout"] == "prosemirror")
    refused = await api.post(blocks_url(setup), {"block": {"type": "paragraph"}}, token=token)
    assert refused.status == 409 and refused.body["error"]["code"] == "not_a_block_tree"
    assert "fragment" in refused.body["error"]["fields"]


async def test_create_with_the_same_idempotency_key_applies_once(api, ctx, ws_port):
    setup = await document_with(ctx, "editor")
    token = setup.users["editor"].access_token
    body = {"block": {"type": "paragraph", "content": "once"}}
    headers = {"Idempotency-Key": "create-once-1"}
    first = await api.post(blocks_url(setup), body, token=token, headers=headers)
    assert first.status == 201, first.body
    again = await api.post(blocks_url(setup), body, token=token, headers=headers)
    assert again.status == 200 and again.body["applied"] is False
    assert again.body["version"] == first.body["version"]
    content = await get_content(api, setup)
    assert [b["text"] for b in content["blocks"]] == ["once"]
    assert content["layout"] == "blocknote"


async def test_the_block_schema_is_published(api):
    got = await api.get("/api/v1/schemas/blocks.json")
    assert got.status == 200
    assert "block.paragraph" in got.body["$defs"]
    assert got.body["x-blocknote-version"] == "0.55.0"
