"""Nested pages inherit their parent's privacy and grants unless they set their own; a privacy
endpoint; moving a page re-evaluates access; open sockets follow (the revocation path)."""

from __future__ import annotations

import pytest

from tests.documents_support import DOCS, create, join, make_workspace
from tests.realtime_support import ws_base
from tests.ws_helpers import fast_user
from tests.yjs_client import YjsNodeClients

pytestmark = pytest.mark.timeout(90)


async def pages(api, ctx):  # type: ignore[no-untyped-def]
    owner, member = await fast_user(ctx, "owner"), await fast_user(ctx, "member")
    ws = await make_workspace(api, owner)
    await join(ctx, ws, member, "member")
    parent = await create(api, owner, ws, title="Parent")
    child = await create(api, owner, ws, title="Child", parent_id=parent["id"])
    return owner, member, ws, parent["id"], child["id"]


async def privacy(api, owner, doc_id: str, value):  # type: ignore[no-untyped-def]
    response = await api.put(
        f"{DOCS}{doc_id}/privacy/", {"is_private": value}, token=owner.access_token
    )
    assert response.status == 200, response.body
    return response.body


async def status(api, user, doc_id: str) -> int:  # type: ignore[no-untyped-def]
    return (await api.get(f"{DOCS}{doc_id}/", token=user.access_token)).status


async def listed(api, user, ws: str) -> dict[str, bool]:  # type: ignore[no-untyped-def]
    page = await api.get(f"{DOCS}?workspace_id={ws}", token=user.access_token)
    assert page.status == 200, page.body
    return {item["id"]: item["is_private"] for item in page.body["items"]}


async def test_sub_page_inherits_privacy_and_grants_unless_it_overrides(api, ctx):
    owner, member, ws, parent, child = await pages(api, ctx)
    assert (await status(api, member, child), await listed(api, member, ws)) == (
        200,
        {parent: False, child: False},
    )

    body = await privacy(api, owner, parent, True)
    assert body == {"id": parent, "is_private": True, "own": True}
    assert await status(api, member, parent) == 403
    assert await status(api, member, child) == 403  # inherited
    assert await listed(api, member, ws) == {}
    assert await listed(api, owner, ws) == {parent: True, child: True}

    granted = await api.put(
        f"{DOCS}{parent}/grants/{member.id}/", {"role": "viewer"}, token=owner.access_token
    )
    assert granted.status == 200, granted.body
    assert await status(api, member, child) == 200  # the parent's grant reaches the sub-page
    edit = await api.patch(f"{DOCS}{child}/", {"title": "x"}, token=member.access_token)
    assert edit.status == 403  # as a viewer

    removed = await api.delete(f"{DOCS}{parent}/grants/{member.id}/", token=owner.access_token)
    assert removed.status == 204
    assert await status(api, member, child) == 403
    body = await privacy(api, owner, child, False)  # the sub-page overrides its parent
    assert body == {"id": child, "is_private": False, "own": False}
    assert await status(api, member, child) == 200
    assert await status(api, member, parent) == 403
    assert await listed(api, member, ws) == {child: False}

    back = await privacy(api, owner, child, None)  # inherit again
    assert back == {"id": child, "is_private": True, "own": None}
    assert await status(api, member, child) == 403

    refused = await api.put(
        f"{DOCS}{parent}/privacy/", {"is_private": False}, token=member.access_token
    )
    assert refused.status in (403, 404)
    bad = await api.put(f"{DOCS}{parent}/privacy/", {"is_private": "yes"}, token=owner.access_token)
    assert bad.status == 400 and "is_private" in bad.body["error"]["fields"]


async def test_moving_a_page_re_evaluates_access(api, ctx):
    owner, member, ws, parent, _child = await pages(api, ctx)
    await privacy(api, owner, parent, True)
    loose = await create(api, owner, ws, title="Loose")
    assert await status(api, member, loose["id"]) == 200
    moved = await api.patch(
        f"{DOCS}{loose['id']}/", {"parent_id": parent}, token=owner.access_token
    )
    assert moved.status == 200, moved.body
    assert await status(api, member, loose["id"]) == 403  # it follows its new parent
    out = await api.patch(f"{DOCS}{loose['id']}/", {"parent_id": None}, token=owner.access_token)
    assert out.status == 200
    assert await status(api, member, loose["id"]) == 200  # top level, inheriting nothing


async def test_open_socket_on_a_sub_page_closes_when_the_parent_turns_private(api, ctx, ws_port):
    owner, member, _ws, parent, child = await pages(api, ctx)
    async with YjsNodeClients() as clients:
        await clients.connect("m", ws_base(ws_port), child, member.access_token)
        await clients.wait_synced("m")
        await privacy(api, owner, parent, True)
        closes = await clients.wait_close("m", timeout_s=5)
        assert closes[0]["code"] == 4403


async def test_removing_a_parents_grant_closes_a_guests_socket_on_a_sub_page(api, ctx, ws_port):
    owner, _member, ws, parent, child = await pages(api, ctx)
    guest = await fast_user(ctx, "guest")
    await join(ctx, ws, guest, "guest")
    shared = await api.put(
        f"{DOCS}{parent}/grants/{guest.id}/", {"role": "editor"}, token=owner.access_token
    )
    assert shared.status == 200, shared.body
    async with YjsNodeClients() as clients:
        await clients.connect("g", ws_base(ws_port), child, guest.access_token)
        await clients.wait_synced("g")  # the parent's grant lets the guest into the sub-page
        removed = await api.delete(f"{DOCS}{parent}/grants/{guest.id}/", token=owner.access_token)
        assert removed.status == 204
        closes = await clients.wait_close("g", timeout_s=5)
        assert closes[0]["code"] in (4403, 4404)
