"""Full-text search (services/search.py): a live BlockNote editor's words are found with the right
block id; the policy filters in SQL (the role matrix, private documents, revoked grants, deleted
documents, archived cards); snippets highlight safely; bad input is a 400 or a safe search;
cursor pages are disjoint and complete."""

from __future__ import annotations

import asyncio
import dataclasses
import time
import uuid
from typing import Any
from urllib.parse import urlencode

import pytest

from tests.board_helpers import board_world, create_card, create_list
from tests.realtime_support import DocSetup, document_with, set_grant
from tests.test_editor_content import BLOCKNOTE_DOC, connected
from tests.yjs_client import YjsNodeClients

pytestmark = pytest.mark.timeout(120)

SEARCH = "/api/v1/search/"


def url(params: dict[str, Any]) -> str:
    return f"{SEARCH}?{urlencode(params)}"


@pytest.fixture
def settings(settings):  # type: ignore[no-untyped-def]
    return dataclasses.replace(settings, projection_refresh_s=0.3)


async def search(api, token: str, q: str, **params: Any) -> Any:  # type: ignore[no-untyped-def]
    return await api.get(url({"q": q, **params}), token=token)


async def hits(api, token: str, q: str, **params: Any) -> list[dict]:  # type: ignore[no-untyped-def]
    got = await search(api, token, q, **params)
    assert got.status == 200, got.body
    return got.body["results"]


async def hits_when(api, token: str, q: str, check, timeout_s: float = 10.0, **params: Any):  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout_s
    while True:
        found = await hits(api, token, q, **params)
        if check(found):
            return found
        assert time.monotonic() < deadline, f"search {q!r} never matched: {found}"
        await asyncio.sleep(0.05)


def block_ids(found: list[dict]) -> set[str]:
    return {h["block_id"] for h in found if h["type"] == "block"}


async def set_title(ctx, doc_id: str, title: str) -> None:  # type: ignore[no-untyped-def]
    await ctx.db.execute("UPDATE documents SET title = $2 WHERE id = $1", doc_id, title)


async def test_live_editor_words_are_found_with_their_block_and_highlighted(api, ctx, ws_port):
    setup = await document_with(ctx, "editor", "viewer", "guest", "outsider")
    token = setup.users["viewer"].access_token
    async with YjsNodeClients() as clients:
        await connected(clients, setup, ws_port, "ada")
        await clients.editor_write("ada", "blocknote", BLOCKNOTE_DOC)
        found = await hits_when(api, token, "spec", lambda f: "p1" in block_ids(f))
        hit = next(h for h in found if h["block_id"] == "p1")
        assert hit["document_id"] == setup.doc_id
        assert hit["link"] == f"/api/v1/documents/{setup.doc_id}/blocks/p1/"
        assert "<mark>spec</mark>" in hit["snippet"]

        # A word typed live, searched as it is being typed (prefix), deep-links to its block.
        await clients.editor_append("ada", "c2", " zanzibarish")
        found = await hits_when(api, token, "zanzib", lambda f: "c2" in block_ids(f))
        assert block_ids(found) == {"c2"}
        assert "<mark>zanzibarish</mark>" in found[0]["snippet"]
        # Nested blocks, checklist items and table cells are indexed too.
        assert block_ids(await hits(api, token, "done")) == {"c1"}

    for role in ("guest", "outsider"):
        assert await hits(api, setup.users[role].access_token, "zanzibarish") == []


async def test_revoked_access_and_deleted_documents_disappear_at_once(api, ctx):
    setup = await document_with(ctx, "viewer", "member")
    await set_title(ctx, setup.doc_id, "Quarterly flamingo report")
    viewer = setup.users["viewer"].access_token
    assert [h["type"] for h in await hits(api, viewer, "flamingo")] == ["document"]

    await set_grant(ctx, setup.doc_id, setup.users["viewer"].id, None)
    assert await hits(api, viewer, "flamingo") == []

    member = setup.users["member"].access_token
    await ctx.db.execute(  # a sub-page inherits its parent page's privacy
        "INSERT INTO documents (workspace_id, parent_id, title, created_by)"
        " VALUES ($1, $2, 'flamingo appendix', $3)",
        setup.workspace_id,
        setup.doc_id,
        setup.users["owner"].id,
    )
    assert len(await hits(api, member, "flamingo")) == 2
    await ctx.db.execute("UPDATE documents SET is_private = true WHERE id = $1", setup.doc_id)
    assert await hits(api, member, "flamingo") == []
    owner = setup.users["owner"].access_token
    assert len(await hits(api, owner, "flamingo")) == 2
    await ctx.db.execute(
        "UPDATE documents SET deleted_at = now() WHERE workspace_id = $1", setup.workspace_id
    )
    assert await hits(api, owner, "flamingo") == []


@pytest.mark.parametrize(
    ("role", "sees"),
    [
        ("owner", True),
        ("editor", True),
        ("viewer", True),
        ("commenter", True),
        ("guest", False),
        ("outsider", False),
    ],
)
async def test_policy_matrix_in_sql(api, ctx, role, sees):
    setup: DocSetup = await document_with(ctx, role)
    word = f"marmot{uuid.uuid4().hex[:8]}"
    await set_title(ctx, setup.doc_id, f"Notes {word}")
    token = setup.users[role].access_token
    found = await hits(api, token, word)
    assert (len(found) == 1) is sees
    # Filters cannot widen what the policy allows: naming the workspace changes nothing.
    found = await hits(api, token, word, workspace_id=setup.workspace_id)
    assert (len(found) == 1) is sees


async def test_cards_title_description_checklist_and_archiving(api, ctx):
    world = await board_world(api, ctx)
    owner = world.users["owner"]
    lst = await create_list(api, owner, world.board_id)
    card = await create_card(api, owner, lst["id"], "Order pelicans", description="blue ones")
    added = await api.post(
        f"/api/v1/cards/{card['id']}/checklist/",
        {"text": "call the aviary"},
        token=owner.access_token,
    )
    assert added.status == 201, added.body
    for q in ("pelican", "blue", "aviary"):
        found = await hits(api, world.token("member"), q, type="card")
        assert [h["card_id"] for h in found] == [card["id"]], q
        assert found[0]["link"] == f"/api/v1/cards/{card['id']}/"
    assert await hits(api, world.token("outsider"), "pelican") == []
    assert await hits(api, world.token("member"), "pelican", type="document,block") == []

    archived = await api.post(f"/api/v1/cards/{card['id']}/archive/", {}, token=owner.access_token)
    assert archived.status == 200, archived.body
    assert await hits(api, world.token("member"), "pelican") == []


async def test_private_board_cards_only_for_its_members(api, ctx):
    world = await board_world(api, ctx, private=True)
    owner = world.users["owner"]
    lst = await create_list(api, owner, world.board_id)
    await create_card(api, owner, lst["id"], "Secret heron plan")
    assert len(await hits(api, world.token("owner"), "heron")) == 1
    assert len(await hits(api, world.token("viewer"), "heron")) == 1  # granted on the board
    assert await hits(api, world.token("member"), "heron") == []


async def test_accents_are_folded_and_words_stemmed(api, ctx):
    setup = await document_with(ctx)
    await set_title(ctx, setup.doc_id, "Café meetings")
    token = setup.users["owner"].access_token
    for q in ("cafe", "CAFÉ", "meeting", "café meet"):
        found = await hits(api, token, q)
        assert len(found) == 1, q
    assert "<mark>Café</mark>" in found[0]["snippet"]


async def test_snippets_are_html_escaped(api, ctx):
    setup = await document_with(ctx)
    await set_title(ctx, setup.doc_id, "<script>alert(1)</script> 5 < 6 & wombat")
    found = await hits(api, setup.users["owner"].access_token, "wombat")
    snippet = found[0]["snippet"]
    assert "<script>" not in snippet
    assert "5 &lt; 6 &amp; <mark>wombat</mark>" in snippet
    assert found[0]["title"] == "<script>alert(1)</script> 5 < 6 & wombat"  # JSON, not HTML


@pytest.mark.parametrize(
    "q",
    [
        "a & b | !c",
        "'quoted' \"double\"",
        "(paren:* <-> x)",
        "\\ % _ ; -- /* */",
        "日本語 テスト",
        "emoji 🦊 fox",
        "x" * 200,
        "a " * 100,
        "bell\x07char",  # Tornado drops control characters from arguments
    ],
)
async def test_syntax_and_unicode_are_a_safe_search(api, ctx, q):
    setup = await document_with(ctx)
    got = await search(api, setup.users["owner"].access_token, q)
    assert got.status == 200, got.body
    assert got.body["results"] == []


@pytest.mark.parametrize(
    "params",
    [
        {"q": ""},
        {"q": "   "},
        {"q": "&|!():*"},
        {"q": "x" * 201},
        {"q": "a\x00b"},
        {"q": "ok", "cursor": "not-a-cursor"},
        {"q": "ok", "type": "reaction"},
        {"q": "ok", "limit": "0"},
        {"q": "ok", "workspace_id": "nope"},
        {"q": "ok", "updated_after": "yesterday"},
        {},
    ],
)
async def test_bad_input_is_a_400(api, ctx, params):
    setup = await document_with(ctx)
    got = await api.get(url(params), token=setup.users["owner"].access_token)
    assert got.status == 400, got.body
    assert got.body["error"]["code"] == "validation_error"


async def test_search_needs_authentication(api):
    got = await api.get(url({"q": "x"}))
    assert got.status == 401


async def test_cursor_pages_are_disjoint_and_complete(api, ctx):
    setup = await document_with(ctx)
    token = setup.users["owner"].access_token
    for n in range(7):
        await ctx.db.execute(
            "INSERT INTO documents (workspace_id, title, created_by) VALUES ($1, $2, $3)",
            setup.workspace_id,
            "ibis " * (n % 3 + 1) + f"page {n}",
            setup.users["owner"].id,
        )
    seen: list[str] = []
    cursor = None
    while True:
        params = {"limit": "3", **({"cursor": cursor} if cursor else {})}
        got = await search(api, token, "ibis", **params)
        assert got.status == 200, got.body
        seen += [h["document_id"] for h in got.body["results"]]
        ranks = [h["rank"] for h in got.body["results"]]
        assert ranks == sorted(ranks, reverse=True)
        cursor = got.body["next_cursor"]
        if cursor is None:
            break
    assert len(seen) == 7 and len(set(seen)) == 7


async def test_filters_author_board_updated_after(api, ctx):
    setup = await document_with(ctx, "member")
    owner, member = setup.users["owner"], setup.users["member"]
    await set_title(ctx, setup.doc_id, "okapi one")
    other = str(
        await ctx.db.fetchval(
            "INSERT INTO documents (workspace_id, title, created_by, updated_at)"
            " VALUES ($1, 'okapi two', $2, now() - interval '2 days') RETURNING id",
            setup.workspace_id,
            member.id,
        )
    )
    token = owner.access_token
    assert len(await hits(api, token, "okapi")) == 2
    by_member = await hits(api, token, "okapi", author_id=member.id)
    assert [h["document_id"] for h in by_member] == [other]
    recent = await hits(api, token, "okapi", updated_after="2020-01-01T00:00:00+00:00")
    assert len(recent) == 2
    yesterday = await ctx.db.fetchval("SELECT (now() - interval '1 day')::text")
    recent = await hits(api, token, "okapi", updated_after=yesterday.replace(" ", "T"))
    assert [h["document_id"] for h in recent] == [setup.doc_id]
    assert await hits(api, token, "okapi", board_id=str(uuid.uuid4())) == []
