"""Per-document grants: share with a guest, narrow a member, revoke; cached decisions and open
sockets are told at once (permission cache invalidation + revocation on NATS)."""

from __future__ import annotations

import asyncio
import uuid

import pytest

from bus.revocations import subscribe_revocations
from tests.documents_support import DOCS, create, join, make_workspace
from tests.ws_helpers import fast_user


async def setup(api, ctx):
    owner = await fast_user(ctx, "owner")
    member, guest = await fast_user(ctx, "member"), await fast_user(ctx, "guest")
    ws = await make_workspace(api, owner)
    await join(ctx, ws, member, "member")
    await join(ctx, ws, guest, "guest")
    doc = await create(api, owner, ws, title="Shared")
    return owner, member, guest, ws, doc["id"]


def grant_path(doc_id: str, user_id: str) -> str:
    return f"{DOCS}{doc_id}/grants/{user_id}/"


async def test_share_with_a_guest_change_role_and_revoke(api, ctx):
    owner, _member, guest, _ws, doc_id = await setup(api, ctx)
    doc_path = f"{DOCS}{doc_id}/"
    assert (await api.get(doc_path, token=guest.access_token)).status in (403, 404)
    shared = await api.put(
        grant_path(doc_id, guest.id), {"role": "viewer"}, token=owner.access_token
    )
    assert shared.status == 200, shared.body
    assert (shared.body["user_id"], shared.body["role"], shared.body["granted_by"]) == (
        guest.id,
        "viewer",
        owner.id,
    )
    assert (await api.get(doc_path, token=guest.access_token)).status == 200
    rename = {"title": "by guest"}
    assert (await api.patch(doc_path, rename, token=guest.access_token)).status == 403
    upgraded = await api.put(
        grant_path(doc_id, guest.id), {"role": "editor"}, token=owner.access_token
    )
    assert upgraded.body["role"] == "editor"
    # The guest's cached "viewer" decision is gone at once.
    assert (await api.patch(doc_path, rename, token=guest.access_token)).status == 200
    listed = await api.get(f"{DOCS}{doc_id}/grants/", token=owner.access_token)
    assert [(g["user_id"], g["role"]) for g in listed.body["items"]] == [(guest.id, "editor")]
    revoked = await api.delete(grant_path(doc_id, guest.id), token=owner.access_token)
    assert revoked.status == 204
    assert (await api.get(doc_path, token=guest.access_token)).status in (403, 404)
    again = await api.delete(grant_path(doc_id, guest.id), token=owner.access_token)
    assert again.status == 404


async def test_a_grant_narrows_a_member(api, ctx):
    owner, member, _guest, _ws, doc_id = await setup(api, ctx)
    doc_path = f"{DOCS}{doc_id}/"
    assert (await api.patch(doc_path, {"title": "ok"}, token=member.access_token)).status == 200
    await api.put(grant_path(doc_id, member.id), {"role": "viewer"}, token=owner.access_token)
    assert (await api.patch(doc_path, {"title": "no"}, token=member.access_token)).status == 403
    assert (await api.get(doc_path, token=member.access_token)).status == 200


async def test_grant_changes_reach_every_node_as_a_revocation(api, ctx):
    owner, _member, guest, _ws, doc_id = await setup(api, ctx)
    received: asyncio.Queue = asyncio.Queue()

    async def on_revocation(revocation) -> None:
        if revocation.resource_id == doc_id:
            await received.put(revocation)

    await subscribe_revocations(ctx.nats, on_revocation)
    await api.put(grant_path(doc_id, guest.id), {"role": "viewer"}, token=owner.access_token)
    revocation = await asyncio.wait_for(received.get(), 5)
    assert (revocation.kind, revocation.user_id, revocation.resource_type) == (
        "permission",
        guest.id,
        "document",
    )


@pytest.mark.parametrize(
    "body", [{}, {"role": "owner"}, {"role": None}, {"role": "viewer", "user_id": "x"}]
)
async def test_grant_rejects_bad_bodies(api, ctx, body):
    owner, _member, guest, _ws, doc_id = await setup(api, ctx)
    response = await api.put(grant_path(doc_id, guest.id), body, token=owner.access_token)
    assert response.status == 400, response.body


async def test_who_may_share_and_with_whom(api, ctx):
    owner, member, guest, _ws, doc_id = await setup(api, ctx)
    outsider = await fast_user(ctx, "outsider")
    viewer = {"role": "viewer"}
    # Members edit but do not manage: no sharing, no grant list.
    assert (
        await api.put(grant_path(doc_id, guest.id), viewer, token=member.access_token)
    ).status == 403
    assert (await api.get(f"{DOCS}{doc_id}/grants/", token=member.access_token)).status == 403
    # Outsiders see nothing; a user outside the workspace cannot be granted anything.
    assert (
        await api.put(grant_path(doc_id, guest.id), viewer, token=outsider.access_token)
    ).status == 404
    not_member = await api.put(grant_path(doc_id, outsider.id), viewer, token=owner.access_token)
    assert not_member.status == 404
    unknown = await api.put(grant_path(doc_id, str(uuid.uuid4())), viewer, token=owner.access_token)
    assert unknown.status == 404
    assert (await api.put(grant_path(doc_id, "me"), viewer, token=owner.access_token)).status == 404
    assert (
        await api.put(grant_path("doc", guest.id), viewer, token=owner.access_token)
    ).status == 404
