"""`/api/v1/documents/` end to end: right and wrong input for every endpoint, visibility, IDOR (S12),
mass assignment (S14), pages in pages, soft delete, duplicate with content."""

from __future__ import annotations

import uuid

import pycrdt
import pytest

from bus.doc_log import DocLog
from tests.content_docs import PARAGRAPH_PROPS
from tests.documents_support import (
    Writer,
    create,
    grant,
    join,
    make_board,
    make_workspace,
    root_text,
)
from tests.ws_helpers import fast_user

DOCS = "/api/v1/documents/"


@pytest.fixture
def doc_log(ctx) -> DocLog:
    return ctx.doc_log


async def make_team(api, ctx, *others: str) -> dict:
    """An owner's workspace, plus any of: a member, a guest, an outsider with their own workspace
    (registration hashes a password: only the users a test needs are made)."""
    team = {"owner": await fast_user(ctx, "owner")}
    team["ws"] = await make_workspace(api, team["owner"])
    for role in others:
        team[role] = await fast_user(ctx, role)
        if role == "outsider":
            team["foreign_ws"] = await make_workspace(api, team[role])
        else:
            await join(ctx, team["ws"], team[role], role)
    return team


# --- create ----------------------------------------------------------------------------------------


async def test_create_and_get_an_empty_document(api, ctx):
    team = await make_team(api, ctx)
    owner = team["owner"]
    doc = await create(api, owner, team["ws"], title="Spec")
    assert doc["title"] == "Spec" and doc["version"] == 0
    assert doc["created_by"] == owner.id and doc["parent_id"] is None and doc["board_id"] is None
    assert doc["content"] == {
        "fragment": "prosemirror",
        "layout": "empty",
        "blocks": [],
        "roots": {},
    }
    got = await api.get(f"{DOCS}{doc['id']}/", token=owner.access_token)
    assert got.status == 200 and got.body == doc


@pytest.mark.parametrize(
    "body, field",
    [
        ({}, "workspace_id"),
        ({"workspace_id": "not-a-uuid"}, "workspace_id"),
        ({"workspace_id": None}, "workspace_id"),
        ({"title": 5}, "title"),
        ({"title": "x" * 501}, "title"),
        ({"board_id": "nope"}, "board_id"),
        ({"created_by": str(uuid.uuid4())}, "created_by"),
        ({"version": 3}, "version"),
        ({"is_private": True}, "is_private"),
    ],
)
async def test_create_rejects_bad_input(api, body, field, ctx):
    team = await make_team(api, ctx)
    payload = {"workspace_id": team["ws"], **body} if "workspace_id" not in body else body
    if body == {}:
        payload = {}
    response = await api.post(DOCS, payload, token=team["owner"].access_token)
    assert response.status == 400 and field in response.body["error"]["fields"], response.body


async def test_create_rejects_malformed_json_and_needs_auth(api, ctx):
    team = await make_team(api, ctx)
    bad = await api.post(DOCS, raw=b"{nope", token=team["owner"].access_token)
    assert bad.status == 400
    assert (await api.post(DOCS, {"workspace_id": team["ws"]})).status == 401


async def test_create_in_foreign_workspace_or_on_foreign_objects_is_404(api, ctx):
    team = await make_team(api, ctx, "outsider")
    owner, outsider = team["owner"], team["outsider"]
    response = await api.post(DOCS, {"workspace_id": team["ws"]}, token=outsider.access_token)
    assert response.status == 404
    foreign_board = await make_board(ctx, team["foreign_ws"])
    foreign_doc = await create(api, outsider, team["foreign_ws"])
    for field, value in (("board_id", foreign_board), ("parent_id", foreign_doc["id"])):
        response = await api.post(
            DOCS, {"workspace_id": team["ws"], field: value}, token=owner.access_token
        )
        assert response.status == 404, (field, response.body)


async def test_board_and_parent_must_be_in_the_same_workspace(api, ctx):
    user = await fast_user(ctx, "two-spaces")
    first, second = await make_workspace(api, user), await make_workspace(api, user)
    board = await make_board(ctx, second)
    parent = await create(api, user, second)
    for field, value in (("board_id", board), ("parent_id", parent["id"])):
        response = await api.post(
            DOCS, {"workspace_id": first, field: value}, token=user.access_token
        )
        assert response.status == 400 and field in response.body["error"]["fields"]


async def test_guest_cannot_create_and_member_can(api, ctx):
    team = await make_team(api, ctx, "member", "guest")
    guest = await api.post(DOCS, {"workspace_id": team["ws"]}, token=team["guest"].access_token)
    assert guest.status == 403
    await create(api, team["member"], team["ws"], title="mine")


async def test_sub_pages_and_board_documents(api, ctx):
    team = await make_team(api, ctx)
    owner = team["owner"]
    board = await make_board(ctx, team["ws"])
    parent = await create(api, owner, team["ws"], title="Parent")
    child = await create(api, owner, team["ws"], title="Child", parent_id=parent["id"])
    on_board = await create(api, owner, team["ws"], title="Board doc", board_id=board)
    assert child["parent_id"] == parent["id"] and on_board["board_id"] == board


# --- get -----------------------------------------------------------------------------------------


async def test_get_shows_content_and_version_from_the_log(api, ctx, doc_log):
    team = await make_team(api, ctx)
    owner = team["owner"]
    doc = await create(api, owner, team["ws"])
    writer = Writer(doc_log, doc["id"])
    await writer.add_block("b1", "Hello")
    last = await writer.type_text("plain text")
    got = await api.get(f"{DOCS}{doc['id']}/", token=owner.access_token)
    assert got.body["version"] == last
    assert got.body["content"]["blocks"] == [
        {
            "id": "b1",
            "type": "paragraph",
            "props": PARAGRAPH_PROPS,
            "content": [{"type": "text", "text": "Hello", "styles": {}}],
            "text": "Hello",
            "children": [],
        }
    ]
    assert root_text(got.body["content"]) == "plain text"


async def test_get_wrong_ids(api, ctx):
    team = await make_team(api, ctx, "outsider")
    token = team["owner"].access_token
    assert (await api.get(f"{DOCS}not-a-uuid/", token=token)).status == 404
    assert (await api.get(f"{DOCS}{uuid.uuid4()}/", token=token)).status == 404
    foreign = await create(api, team["outsider"], team["foreign_ws"])
    response = await api.get(f"{DOCS}{foreign['id']}/", token=token)
    assert response.status == 404 and response.body["error"]["code"] == "not_found"


async def test_private_and_granted_visibility(api, ctx):
    team = await make_team(api, ctx, "member", "guest")
    owner, member, guest = team["owner"], team["member"], team["guest"]
    doc = await create(api, owner, team["ws"], title="secret")
    await ctx.db.execute("UPDATE documents SET is_private = true WHERE id = $1", doc["id"])
    assert (await api.get(f"{DOCS}{doc['id']}/", token=member.access_token)).status in (403, 404)
    shared = await create(api, owner, team["ws"], title="shared")
    assert (await api.get(f"{DOCS}{shared['id']}/", token=guest.access_token)).status in (403, 404)
    await grant(ctx, shared["id"], guest, "viewer")
    assert (await api.get(f"{DOCS}{shared['id']}/", token=guest.access_token)).status == 200


# --- list ----------------------------------------------------------------------------------------


async def test_list_filters_and_paginates(api, ctx):
    team = await make_team(api, ctx)
    owner = team["owner"]
    board = await make_board(ctx, team["ws"])
    parent = await create(api, owner, team["ws"], title="P")
    children = [
        await create(api, owner, team["ws"], title=f"c{i}", parent_id=parent["id"])
        for i in range(3)
    ]
    on_board = await create(api, owner, team["ws"], title="b", board_id=board)
    token = owner.access_token

    async def ids(query: str) -> list[str]:
        response = await api.get(f"{DOCS}?workspace_id={team['ws']}&{query}", token=token)
        assert response.status == 200, response.body
        return [item["id"] for item in response.body["items"]]

    assert await ids(f"parent_id={parent['id']}") == [c["id"] for c in children]
    assert await ids(f"board_id={board}") == [on_board["id"]]
    assert await ids("top_level=true") == [parent["id"], on_board["id"]]
    first = await api.get(
        f"{DOCS}?workspace_id={team['ws']}&parent_id={parent['id']}&limit=2", token=token
    )
    assert len(first.body["items"]) == 2 and first.body["next_offset"] == 2
    assert first.body["items"][0]["my_role"] == "manager"
    rest = await ids(f"parent_id={parent['id']}&limit=2&offset=2")
    assert rest == [children[2]["id"]]


async def test_list_shows_only_what_the_caller_may_view(api, ctx):
    team = await make_team(api, ctx, "member", "guest", "outsider")
    owner, member, guest = team["owner"], team["member"], team["guest"]
    open_doc = await create(api, owner, team["ws"], title="open")
    private = await create(api, owner, team["ws"], title="private")
    await ctx.db.execute("UPDATE documents SET is_private = true WHERE id = $1", private["id"])
    private_board = await make_board(ctx, team["ws"], private=True)
    hidden = await create(api, owner, team["ws"], title="on private board", board_id=private_board)
    shared = await create(api, owner, team["ws"], title="shared with guest")
    await grant(ctx, shared["id"], guest, "commenter")

    async def visible(user) -> set[str]:
        response = await api.get(f"{DOCS}?workspace_id={team['ws']}", token=user.access_token)
        assert response.status == 200
        return {item["id"] for item in response.body["items"]}

    everything = {open_doc["id"], private["id"], hidden["id"], shared["id"]}
    assert await visible(owner) == everything
    assert await visible(member) == {open_doc["id"], shared["id"]}
    assert await visible(guest) == {shared["id"]}
    outsider = await api.get(
        f"{DOCS}?workspace_id={team['ws']}", token=team["outsider"].access_token
    )
    assert outsider.status == 404


@pytest.mark.parametrize(
    "query",
    ["", "workspace_id=nope", "limit=0", "limit=101", "offset=-1", "top_level=maybe", "x=1"],
)
async def test_list_rejects_bad_queries(api, query, ctx):
    team = await make_team(api, ctx)
    if query not in ("", "workspace_id=nope"):
        query = f"workspace_id={team['ws']}&{query}"
    response = await api.get(f"{DOCS}?{query}", token=team["owner"].access_token)
    assert response.status == 400, response.body


# --- update ----------------------------------------------------------------------------------------


async def test_rename_and_move(api, ctx):
    team = await make_team(api, ctx)
    owner = team["owner"]
    a = await create(api, owner, team["ws"], title="A")
    b = await create(api, owner, team["ws"], title="B")
    token = owner.access_token
    renamed = await api.patch(f"{DOCS}{a['id']}/", {"title": "A2"}, token=token)
    assert renamed.status == 200 and renamed.body["title"] == "A2"
    moved = await api.patch(f"{DOCS}{b['id']}/", {"parent_id": a["id"]}, token=token)
    assert moved.body["parent_id"] == a["id"]
    top = await api.patch(f"{DOCS}{b['id']}/", {"parent_id": None}, token=token)
    assert top.body["parent_id"] is None


async def test_move_cannot_create_a_cycle(api, ctx):
    team = await make_team(api, ctx)
    owner = team["owner"]
    a = await create(api, owner, team["ws"])
    b = await create(api, owner, team["ws"], parent_id=a["id"])
    c = await create(api, owner, team["ws"], parent_id=b["id"])
    token = owner.access_token
    for target in (a, c):
        response = await api.patch(f"{DOCS}{a['id']}/", {"parent_id": target["id"]}, token=token)
        assert response.status == 400 and "parent_id" in response.body["error"]["fields"]


@pytest.mark.parametrize(
    "body",
    [
        {},
        {"workspace_id": str(uuid.uuid4())},
        {"created_by": str(uuid.uuid4())},
        {"version": 99},
        {"board_id": str(uuid.uuid4())},
        {"title": None},
        {"title": ["x"]},
        {"parent_id": "nope"},
    ],
)
async def test_update_rejects_bad_input_and_mass_assignment(api, ctx, body):
    team = await make_team(api, ctx)
    owner = team["owner"]
    doc = await create(api, owner, team["ws"], title="T")
    response = await api.patch(f"{DOCS}{doc['id']}/", body, token=owner.access_token)
    assert response.status == 400, response.body
    row = await ctx.db.fetchrow("SELECT * FROM documents WHERE id = $1", doc["id"])
    assert (str(row["workspace_id"]), str(row["created_by"]), row["title"]) == (
        team["ws"],
        owner.id,
        "T",
    )


async def test_update_permissions_and_ids(api, ctx):
    team = await make_team(api, ctx, "guest", "outsider")
    owner, guest, outsider = team["owner"], team["guest"], team["outsider"]
    doc = await create(api, owner, team["ws"])
    await grant(ctx, doc["id"], guest, "viewer")
    viewer = await api.patch(f"{DOCS}{doc['id']}/", {"title": "x"}, token=guest.access_token)
    assert viewer.status == 403
    foreign = await api.patch(f"{DOCS}{doc['id']}/", {"title": "x"}, token=outsider.access_token)
    assert foreign.status == 404
    bad = await api.patch(f"{DOCS}zzz/", {"title": "x"}, token=owner.access_token)
    assert bad.status == 404
    foreign_parent = await create(api, outsider, team["foreign_ws"])
    move = await api.patch(
        f"{DOCS}{doc['id']}/", {"parent_id": foreign_parent["id"]}, token=owner.access_token
    )
    assert move.status == 404


# --- delete ----------------------------------------------------------------------------------------


async def test_soft_delete_needs_manage_and_takes_sub_pages(api, ctx):
    team = await make_team(api, ctx, "member")
    owner, member = team["owner"], team["member"]
    parent = await create(api, member, team["ws"], title="P")
    child = await create(api, member, team["ws"], title="C", parent_id=parent["id"])
    denied = await api.delete(f"{DOCS}{parent['id']}/", token=member.access_token)
    assert denied.status == 403  # members edit, only managers (Admin/Owner, grants) delete
    assert (await api.delete(f"{DOCS}{parent['id']}/", token=owner.access_token)).status == 204
    for doc in (parent, child):
        assert (await api.get(f"{DOCS}{doc['id']}/", token=owner.access_token)).status == 404
        row = await ctx.db.fetchrow("SELECT deleted_at FROM documents WHERE id = $1", doc["id"])
        assert row["deleted_at"] is not None  # soft: still there
    again = await api.delete(f"{DOCS}{parent['id']}/", token=owner.access_token)
    assert again.status == 404


async def test_delete_wrong_input(api, ctx):
    team = await make_team(api, ctx, "outsider")
    owner = team["owner"]
    doc = await create(api, owner, team["ws"])
    foreign = await api.delete(f"{DOCS}{doc['id']}/", token=team["outsider"].access_token)
    assert foreign.status == 404
    assert (await api.delete(f"{DOCS}bad/", token=owner.access_token)).status == 404
    with_body = await api.delete(f"{DOCS}{doc['id']}/", {"force": True}, token=owner.access_token)
    assert with_body.status == 400


# --- duplicate -----------------------------------------------------------------------------------


async def test_duplicate_copies_current_content(api, ctx, doc_log):
    team = await make_team(api, ctx, "member")
    owner, member = team["owner"], team["member"]
    parent = await create(api, owner, team["ws"], title="P")
    doc = await create(api, owner, team["ws"], title="Plan", parent_id=parent["id"])
    writer = Writer(doc_log, doc["id"])
    await writer.add_block("b1", "first")
    await writer.type_text("body")
    response = await api.post(f"{DOCS}{doc['id']}/duplicate/", token=member.access_token)
    assert response.status == 201, response.body
    copy = response.body
    assert copy["id"] != doc["id"] and copy["title"] == "Copy of Plan"
    assert copy["parent_id"] == parent["id"] and copy["created_by"] == member.id
    original = await api.get(f"{DOCS}{doc['id']}/", token=owner.access_token)
    assert copy["content"] == original.body["content"]
    entries = await doc_log.read(copy["id"], 0)
    assert [e.msg_id for e in entries] == [f"duplicate:{copy['id']}"]
    # The copy is independent: editing it leaves the source alone.
    copy_writer = Writer(doc_log, copy["id"], pycrdt.Doc())
    copy_writer.doc.apply_update(entries[0].update)
    await copy_writer.type_text(" more")
    got = await api.get(f"{DOCS}{copy['id']}/", token=owner.access_token)
    assert root_text(got.body["content"]) == "body more"
    again = await api.get(f"{DOCS}{doc['id']}/", token=owner.access_token)
    assert root_text(again.body["content"]) == "body"
    rows = await ctx.db.fetch("SELECT block_id FROM blocks WHERE document_id = $1", copy["id"])
    assert [r["block_id"] for r in rows] == ["b1"]


async def test_duplicate_rules(api, ctx):
    team = await make_team(api, ctx, "guest", "outsider")
    owner, guest = team["owner"], team["guest"]
    doc = await create(api, owner, team["ws"], title="T")
    empty = await api.post(
        f"{DOCS}{doc['id']}/duplicate/", {"title": "Fresh"}, token=owner.access_token
    )
    assert empty.status == 201 and empty.body["title"] == "Fresh" and empty.body["version"] == 0
    await grant(ctx, doc["id"], guest, "viewer")
    assert (await api.post(f"{DOCS}{doc['id']}/duplicate/", token=guest.access_token)).status == 403
    foreign = await api.post(f"{DOCS}{doc['id']}/duplicate/", token=team["outsider"].access_token)
    assert foreign.status == 404
    unknown = await api.post(
        f"{DOCS}{doc['id']}/duplicate/", {"workspace_id": team["ws"]}, token=owner.access_token
    )
    assert unknown.status == 400
    assert (await api.post(f"{DOCS}1234/duplicate/", token=owner.access_token)).status == 404


async def test_every_document_route_is_in_the_openapi_document(api):
    spec = (await api.get("/api/v1/openapi.json")).body
    for path in (
        "/api/v1/documents/",
        "/api/v1/documents/{doc_id}/",
        "/api/v1/documents/{doc_id}/duplicate/",
        "/api/v1/documents/{doc_id}/versions/",
        "/api/v1/documents/{doc_id}/versions/{version_id}/",
        "/api/v1/documents/{doc_id}/versions/{version_id}/restore/",
    ):
        assert path in spec["paths"], path
