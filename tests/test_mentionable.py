"""Mention autocomplete (`GET /api/v1/workspaces/{id}/mentionable/`): prefix matching on names and
emails, the caller left out, `can_view` per member for a document from the policy, who may ask,
and bad input refused with a 400 that changes nothing."""

from __future__ import annotations

from urllib.parse import quote

import pytest

from tests.ws_helpers import grant, insert_document, workspace_with, ws_path

pytestmark = pytest.mark.timeout(60)

NAMES = {"admin": "Ada Lovelace", "member": "Grace Hopper", "guest": "Alan Turing"}


async def team(api, ctx):  # type: ignore[no-untyped-def]
    workspace, users = await workspace_with(api, ctx, "admin", "member", "guest")
    for role, name in NAMES.items():
        await ctx.db.execute(
            "UPDATE users SET display_name = $2 WHERE id = $1", users[role].id, name
        )
    return workspace["id"], users


async def names(api, workspace_id: str, user, query: str = "") -> list[str]:  # type: ignore[no-untyped-def]
    got = await api.get(ws_path(workspace_id, f"mentionable/{query}"), token=user.access_token)
    assert got.status == 200, got.body
    return [item["display_name"] for item in got.body["items"]]


async def test_prefix_of_name_word_or_email_and_never_the_caller(api, ctx):
    ws, users = await team(api, ctx)
    owner = users["owner"]
    assert await names(api, ws, owner) == ["Ada Lovelace", "Alan Turing", "Grace Hopper"]
    assert await names(api, ws, owner, "?q=a") == ["Ada Lovelace", "Alan Turing"]
    assert await names(api, ws, owner, "?q=HOP") == ["Grace Hopper"]  # a later word, any case
    assert await names(api, ws, owner, "?q=love") == ["Ada Lovelace"]
    assert await names(api, ws, owner, "?q=ovelace") == []  # a prefix, not a substring
    email_prefix = quote(users["guest"].email[:12])
    assert await names(api, ws, owner, f"?q={email_prefix}") == ["Alan Turing"]
    assert await names(api, ws, owner, "?q=%25") == []  # LIKE wildcards match themselves
    assert await names(api, ws, owner, "?q=_") == []
    assert await names(api, ws, owner, "?limit=1") == ["Ada Lovelace"]
    # The caller is never offered; a Guest may ask too (Guests comment).
    assert "Alan Turing" not in await names(api, ws, users["guest"])
    assert "Owner" in await names(api, ws, users["guest"])
    await ctx.db.execute("UPDATE users SET is_active = false WHERE id = $1", users["member"].id)
    assert await names(api, ws, owner, "?q=grace") == []  # deactivated accounts are not offered


async def test_can_view_follows_the_policy_for_a_document(api, ctx):
    ws, users = await team(api, ctx)
    owner = users["owner"]
    private_doc = await insert_document(ctx, ws, private=True)
    await grant(ctx, ws, "document", private_doc, users["guest"].id, "viewer")
    got = await api.get(
        ws_path(ws, f"mentionable/?document_id={private_doc}"), token=owner.access_token
    )
    assert got.status == 200, got.body
    flags = {item["display_name"]: item["can_view"] for item in got.body["items"]}
    # Admins see everything; a Member sees no private page without a grant; the Guest has one.
    assert flags == {"Ada Lovelace": True, "Alan Turing": True, "Grace Hopper": False}
    assert [item["display_name"] for item in got.body["items"]][-1] == "Grace Hopper"
    open_doc = await insert_document(ctx, ws)
    got = await api.get(
        ws_path(ws, f"mentionable/?document_id={open_doc}"), token=owner.access_token
    )
    flags = {item["display_name"]: item["can_view"] for item in got.body["items"]}
    assert flags == {"Ada Lovelace": True, "Alan Turing": False, "Grace Hopper": True}
    without = await api.get(ws_path(ws, "mentionable/"), token=owner.access_token)
    assert {item["can_view"] for item in without.body["items"]} == {None}


async def test_who_may_ask(api, ctx, make_user):
    ws, users = await team(api, ctx)
    doc = await insert_document(ctx, ws)
    path = ws_path(ws, f"mentionable/?document_id={doc}")
    outsider = await make_user("outsider")
    assert (await api.get(ws_path(ws, "mentionable/"), token=outsider.access_token)).status == 404
    assert (await api.get(path, token=outsider.access_token)).status == 404
    assert (await api.get(ws_path(ws, "mentionable/"))).status == 401
    # The Guest may view the page but not write in it: no mentions to make there.
    await grant(ctx, ws, "document", doc, users["guest"].id, "viewer")
    viewer = await api.get(path, token=users["guest"].access_token)
    assert viewer.status == 403, viewer.body
    await grant(ctx, ws, "document", doc, users["guest"].id, "commenter")
    assert (await api.get(path, token=users["guest"].access_token)).status == 200
    other_ws, _ = await team(api, ctx)
    elsewhere = await insert_document(ctx, other_ws)
    await ctx.db.execute(
        "INSERT INTO workspace_members (workspace_id, user_id, role) VALUES ($1, $2, 'member')",
        other_ws,
        users["owner"].id,
    )
    # A page of another workspace, even one the caller may edit, names nothing here.
    crossed = await api.get(
        ws_path(ws, f"mentionable/?document_id={elsewhere}"), token=users["owner"].access_token
    )
    assert crossed.status == 404, crossed.body
    assert crossed.body["error"]["fields"] == {"document_id": ["not in this workspace"]}


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ("?limit=0", "limit"),
        ("?limit=51", "limit"),
        ("?limit=ten", "limit"),
        (f"?q={'a' * 101}", "q"),
        ("?q=a%00b", "q"),
        ("?document_id=not-a-uuid", "document_id"),
        ("?colour=red", "colour"),
    ],
)
async def test_bad_input_is_a_400_naming_the_parameter(api, ctx, query, field):
    ws, users = await team(api, ctx)
    got = await api.get(ws_path(ws, f"mentionable/{query}"), token=users["owner"].access_token)
    assert got.status == 400, got.body
    assert got.body["error"]["code"] == "validation_error"
    assert field in got.body["error"]["fields"]


async def test_unknown_workspace_and_document_are_404(api, ctx):
    ws, users = await team(api, ctx)
    token = users["owner"].access_token
    unknown = "00000000-0000-4000-8000-000000000000"
    assert (await api.get(ws_path(unknown, "mentionable/"), token=token)).status == 404
    got = await api.get(ws_path(ws, f"mentionable/?document_id={unknown}"), token=token)
    assert got.status == 404
