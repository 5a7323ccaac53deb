"""Members: list, role changes, removal, leaving, ownership transfer; escalation attempts."""

from __future__ import annotations

import asyncio
import uuid

import pytest

from bus.jetstream import workspace_activity_subject
from bus.schemas.activity import ActivityEventSchema
from tests.ws_helpers import (
    Collector,
    add_member,
    fast_user,
    grant,
    insert_board,
    insert_document,
    workspace_with,
    ws_path,
)


def member_path(workspace_id: str, user_id: str) -> str:
    return ws_path(workspace_id, f"members/{user_id}/")


async def roles_of(ctx, workspace_id: str) -> dict[str, str]:
    rows = await ctx.db.fetch(
        "SELECT user_id, role FROM workspace_members WHERE workspace_id = $1", workspace_id
    )
    return {str(r["user_id"]): r["role"] for r in rows}


async def test_list_members_with_roles_paginated(api, ctx):
    workspace, users = await workspace_with(api, ctx, "admin", "member", "guest")
    page = await api.get(
        ws_path(workspace["id"], "members/?limit=3"), token=users["guest"].access_token
    )
    assert page.status == 200
    assert [m["role"] for m in page.body["items"]] == ["owner", "admin", "member"]
    assert page.body["items"][0]["email"] == users["owner"].email
    assert page.body["next_offset"] == 3
    rest = await api.get(
        ws_path(workspace["id"], "members/?limit=3&offset=3"), token=users["guest"].access_token
    )
    assert [m["user_id"] for m in rest.body["items"]] == [users["guest"].id]
    assert rest.body["next_offset"] is None


async def test_admin_changes_roles_up_to_admin(api, ctx):
    workspace, users = await workspace_with(api, ctx, "admin", "member", "guest")
    ws = workspace["id"]
    promoted = await api.patch(
        member_path(ws, users["guest"].id), {"role": "admin"}, token=users["admin"].access_token
    )
    assert promoted.status == 200, promoted.body
    assert promoted.body["role"] == "admin"
    demoted = await api.patch(
        member_path(ws, users["guest"].id), {"role": "member"}, token=users["admin"].access_token
    )
    assert demoted.body["role"] == "member"


@pytest.mark.parametrize(
    "actor,target,role,status,code",
    [
        ("admin", "admin", "owner", 403, "role_above_own"),  # Admin makes self Owner
        ("admin", "member", "owner", 403, "role_above_own"),
        ("admin", "owner", "member", 403, "cannot_manage_owner"),
        ("admin", "owner", "admin", 403, "cannot_manage_owner"),
        ("member", "guest", "member", 403, "forbidden"),
        ("member", "member", "admin", 403, "forbidden"),  # Member makes self Admin
        ("guest", "guest", "member", 403, "forbidden"),
        ("owner", "owner", "admin", 409, "last_owner"),
    ],
)
async def test_role_change_escalations_are_refused(api, ctx, actor, target, role, status, code):
    workspace, users = await workspace_with(api, ctx, "admin", "member", "guest")
    before = await roles_of(ctx, workspace["id"])
    response = await api.patch(
        member_path(workspace["id"], users[target].id),
        {"role": role},
        token=users[actor].access_token,
    )
    assert response.status == status, response.body
    assert response.error_code == code
    assert await roles_of(ctx, workspace["id"]) == before


async def test_owner_can_make_another_owner_then_step_down(api, ctx):
    workspace, users = await workspace_with(api, ctx, "admin")
    ws, owner = workspace["id"], users["owner"]
    made = await api.patch(
        member_path(ws, users["admin"].id), {"role": "owner"}, token=owner.access_token
    )
    assert made.status == 200
    stepped = await api.patch(
        member_path(ws, owner.id), {"role": "member"}, token=owner.access_token
    )
    assert stepped.status == 200
    assert await roles_of(ctx, ws) == {users["admin"].id: "owner", owner.id: "member"}


@pytest.mark.parametrize(
    "body", [{}, {"role": "superuser"}, {"role": "OWNER"}, {"role": 1}, {"role": "member", "x": 1}]
)
async def test_role_change_rejects_bad_bodies(api, ctx, body):
    workspace, users = await workspace_with(api, ctx, "member")
    response = await api.patch(
        member_path(workspace["id"], users["member"].id), body, token=users["owner"].access_token
    )
    assert response.status == 400


async def test_member_endpoints_404_for_unknown_or_malformed_members(api, ctx):
    workspace, users = await workspace_with(api, ctx)
    token = users["owner"].access_token
    stranger = await fast_user(ctx)
    for user_id in (stranger.id, str(uuid.uuid4())):
        patched = await api.patch(
            member_path(workspace["id"], user_id), {"role": "guest"}, token=token
        )
        assert patched.status == 404
        assert patched.error_code == "member_not_found"
        removed = await api.delete(member_path(workspace["id"], user_id), token=token)
        assert removed.status == 404
    malformed = await api.delete(member_path(workspace["id"], "nope"), token=token)
    assert malformed.status == 404
    assert malformed.body["error"]["fields"] == {"user_id": ["not a UUID"]}


async def test_remove_member_drops_their_grants(api, ctx):
    workspace, users = await workspace_with(api, ctx, "admin", "member")
    ws, member = workspace["id"], users["member"]
    board = await insert_board(ctx, ws, private=True)
    document = await insert_document(ctx, ws, private=True)
    await grant(ctx, ws, "board", board, member.id, "editor")
    await grant(ctx, ws, "document", document, member.id, "viewer")
    removed = await api.delete(member_path(ws, member.id), token=users["admin"].access_token)
    assert removed.status == 204
    assert member.id not in await roles_of(ctx, ws)
    grants = await ctx.db.fetchval(
        "SELECT (SELECT count(*) FROM board_members WHERE user_id = $1)"
        " + (SELECT count(*) FROM document_grants WHERE user_id = $1)",
        member.id,
    )
    assert grants == 0
    assert (await api.get(ws_path(ws), token=member.access_token)).status == 404


@pytest.mark.parametrize(
    "actor,target,status,code",
    [
        ("admin", "owner", 403, "cannot_manage_owner"),
        ("member", "guest", 403, "forbidden"),
        ("guest", "member", 403, "forbidden"),
        ("owner", "owner", 409, "last_owner"),  # removing yourself is leaving
    ],
)
async def test_removal_rules(api, ctx, actor, target, status, code):
    workspace, users = await workspace_with(api, ctx, "admin", "member", "guest")
    before = await roles_of(ctx, workspace["id"])
    response = await api.delete(
        member_path(workspace["id"], users[target].id), token=users[actor].access_token
    )
    assert response.status == status, response.body
    assert response.error_code == code
    assert await roles_of(ctx, workspace["id"]) == before


async def test_outsider_gets_404_on_member_endpoints(api, ctx):
    workspace, users = await workspace_with(api, ctx, "member")
    outsider = await fast_user(ctx)
    ws, token = workspace["id"], outsider.access_token
    assert (await api.get(ws_path(ws, "members/"), token=token)).status == 404
    assert (
        await api.patch(member_path(ws, users["member"].id), {"role": "guest"}, token=token)
    ).status == 404
    assert (await api.delete(member_path(ws, users["member"].id), token=token)).status == 404
    assert (await api.post(ws_path(ws, "leave/"), token=token)).status == 404


async def test_leave(api, ctx):
    workspace, users = await workspace_with(api, ctx, "member")
    ws = workspace["id"]
    left = await api.post(ws_path(ws, "leave/"), token=users["member"].access_token)
    assert left.status == 204
    assert (await api.get(ws_path(ws), token=users["member"].access_token)).status == 404
    last = await api.post(ws_path(ws, "leave/"), token=users["owner"].access_token)
    assert last.status == 409
    assert last.error_code == "last_owner"
    bad_body = await api.post(
        ws_path(ws, "leave/"), {"force": True}, token=users["owner"].access_token
    )
    assert bad_body.status == 400


async def test_an_owner_may_leave_when_another_owner_remains(api, ctx):
    workspace, users = await workspace_with(api, ctx)
    second = await fast_user(ctx, "second")
    await add_member(api, workspace["id"], users["owner"], second, "owner")
    assert (
        await api.post(ws_path(workspace["id"], "leave/"), token=second.access_token)
    ).status == 204
    assert await roles_of(ctx, workspace["id"]) == {users["owner"].id: "owner"}


async def test_transfer_ownership(api, ctx):
    workspace, users = await workspace_with(api, ctx, "admin", "member")
    ws, owner, member = workspace["id"], users["owner"], users["member"]
    path = ws_path(ws, "transfer-ownership/")
    assert (
        await api.post(path, {"user_id": member.id}, token=users["admin"].access_token)
    ).status == 403
    to_self = await api.post(path, {"user_id": owner.id}, token=owner.access_token)
    assert to_self.status == 400
    stranger = await fast_user(ctx)
    assert (await api.post(path, {"user_id": stranger.id}, token=owner.access_token)).status == 404
    for body in ({}, {"user_id": "nope"}, {"user_id": member.id, "role": "owner"}):
        assert (await api.post(path, body, token=owner.access_token)).status == 400
    done = await api.post(path, {"user_id": member.id}, token=owner.access_token)
    assert done.status == 204
    roles = await roles_of(ctx, ws)
    assert (roles[member.id], roles[owner.id]) == ("owner", "admin")
    # The former owner lost owner-only rights at once (the cache was invalidated).
    assert (await api.delete(ws_path(ws), token=owner.access_token)).status == 403


async def test_concurrent_demotions_keep_one_owner(api, ctx):
    workspace, users = await workspace_with(api, ctx)
    ws, first = workspace["id"], users["owner"]
    second = await fast_user(ctx, "second")
    await add_member(api, ws, first, second, "owner")
    responses = await asyncio.gather(
        api.patch(member_path(ws, second.id), {"role": "admin"}, token=first.access_token),
        api.patch(member_path(ws, first.id), {"role": "admin"}, token=second.access_token),
    )
    assert sorted(r.status for r in responses) in ([200, 403], [200, 409])
    assert list((await roles_of(ctx, ws)).values()).count("owner") == 1


async def test_membership_changes_publish_activity_events(api, ctx):
    workspace, users = await workspace_with(api, ctx, "member", "guest")
    ws = workspace["id"]
    collector = await Collector().start(ctx, workspace_activity_subject(ws))
    try:
        await api.patch(
            member_path(ws, users["guest"].id),
            {"role": "member"},
            token=users["owner"].access_token,
        )
        await api.delete(member_path(ws, users["member"].id), token=users["owner"].access_token)
        await api.post(ws_path(ws, "leave/"), token=users["guest"].access_token)
        changed, headers = await collector.wait_for(lambda e: e["type"] == "member.role_changed")
        removed, _ = await collector.wait_for(lambda e: e["type"] == "member.removed")
        left, _ = await collector.wait_for(lambda e: e["type"] == "member.left")
    finally:
        await collector.stop()
    assert changed["data"] == {
        "user_id": users["guest"].id,
        "old_role": "guest",
        "new_role": "member",
    }
    assert changed["actor_id"] == users["owner"].id
    assert headers["Nats-Msg-Id"] == changed["id"]
    assert removed["data"] == {"user_id": users["member"].id, "role": "member"}
    assert left["data"] == {"user_id": users["guest"].id, "role": "member"}
    for event in (changed, removed, left):
        assert ActivityEventSchema().validate(event) == {}
        assert event["workspace_id"] == ws
    pending = await ctx.db.fetchval(
        "SELECT count(*) FROM outbox WHERE kind = 'activity_event' AND processed_at IS NULL"
        " AND payload->'event'->>'workspace_id' = $1",
        ws,
    )
    assert pending == 0
