"""Where notifications come from today (comments and mentions add theirs): a card assigned to
you, an invitation to a workspace, access granted to a document or a board — through the real
REST endpoints, read back through the inbox API."""

from __future__ import annotations

from tests.board_helpers import board_path, board_world, create_card, create_list
from tests.notification_support import INBOX
from tests.ws_helpers import fast_user, insert_document, invite, workspace_with


async def items(api, user, kind: str | None = None) -> list[dict]:
    page = await api.get(INBOX + "?limit=100", token=user.access_token)
    assert page.status == 200, page.body
    return [i for i in page.body["items"] if kind in (None, i["latest"]["kind"])]


async def test_newly_assigned_users_hear_about_the_card_once(api, ctx):
    world = await board_world(api, ctx)
    owner, member, viewer = (world.users[r] for r in ("owner", "member", "viewer"))
    lst = await create_list(api, owner, world.board_id)
    card = await create_card(api, owner, lst["id"], "Ship it", assignees=[member.id, owner.id])
    [item] = await items(api, member, "card.assigned")
    latest = item["latest"]
    assert (latest["card_id"], latest["board_id"], latest["actor_id"]) == (
        card["id"],
        world.board_id,
        owner.id,
    )
    assert latest["data"] == {"title": "Ship it", "board_name": world.board["name"]}
    assert await items(api, owner, "card.assigned") == []  # not for assigning yourself
    # Adding the viewer notifies the viewer only; the member was already on the card.
    updated = await api.patch(
        f"/api/v1/cards/{card['id']}/",
        {"assignees": [member.id, viewer.id]},
        token=member.access_token,
    )
    assert updated.status == 200, updated.body
    assert [i["count"] for i in await items(api, member, "card.assigned")] == [1]
    [for_viewer] = await items(api, viewer, "card.assigned")
    assert for_viewer["latest"]["actor_id"] == member.id


async def test_an_existing_user_invited_to_a_workspace_sees_it_in_the_inbox(api, ctx):
    workspace, users = await workspace_with(api, ctx)
    owner = users["owner"]
    invitee = await fast_user(ctx, "invitee")
    invited = await invite(api, workspace["id"], owner, invitee.email.upper(), "member")
    assert invited.status == 201, invited.body
    [item] = await items(api, invitee, "workspace.invited")
    latest = item["latest"]
    assert (latest["workspace_id"], latest["actor_id"]) == (workspace["id"], owner.id)
    assert latest["data"]["workspace_name"] == workspace["name"]
    assert latest["data"]["invitation_id"] == invited.body["id"]
    assert "token" not in str(latest["data"])  # the accept link stays in the email
    assert item["unread_count"] == 1
    before = (await api.get(INBOX, token=invitee.access_token)).body["unread_count"]
    accepted = await api.post(invited.body["accept_path"], token=invitee.access_token)
    assert accepted.status in (200, 201), accepted.body
    [item] = await items(api, invitee, "workspace.invited")
    assert item["unread_count"] == 0  # joining settles the invitation's notification
    assert (await api.get(INBOX, token=invitee.access_token)).body["unread_count"] == before - 1
    stranger = await invite(api, workspace["id"], owner, "nobody-here@example.com", "member")
    assert stranger.status == 201
    rows = await ctx.db.fetchval(
        "SELECT count(*) FROM notifications WHERE kind = 'workspace.invited'"
        " AND data->>'invitation_id' = $1",
        stranger.body["id"],
    )
    assert rows == 0


async def test_sharing_a_document_tells_the_grantee_when_the_role_changes(api, ctx):
    workspace, users = await workspace_with(api, ctx, "guest")
    owner, guest = users["owner"], users["guest"]
    doc = await insert_document(ctx, workspace["id"], title="Roadmap")
    path = f"/api/v1/documents/{doc}/grants/{guest.id}/"
    for role in ("viewer", "viewer", "editor"):
        shared = await api.put(path, {"role": role}, token=owner.access_token)
        assert shared.status == 200, shared.body
    [item] = await items(api, guest, "access.granted")
    assert item["count"] == 2  # the repeated viewer grant changed nothing
    assert item["latest"]["document_id"] == doc
    assert item["latest"]["data"] == {"title": "Roadmap", "role": "editor"}


async def test_a_board_grant_tells_the_member(api, ctx):
    world = await board_world(api, ctx)
    guest = world.users["guest"]
    granted = await api.put(
        board_path(world.board_id, f"members/{guest.id}/"),
        {"role": "editor"},
        token=world.token("owner"),
    )
    assert granted.status == 200, granted.body
    [item] = await items(api, guest, "access.granted")
    assert (item["latest"]["board_id"], item["latest"]["data"]["role"]) == (
        world.board_id,
        "editor",
    )


async def test_a_removed_member_gets_no_more_grants_or_assignments(api, ctx):
    """Revoked access: after removal nothing about the workspace reaches them (the endpoints
    refuse them as grantees or assignees, and `notify` checks again at write time)."""
    world = await board_world(api, ctx)
    owner, viewer = world.users["owner"], world.users["viewer"]
    removed = await api.delete(
        f"/api/v1/workspaces/{world.workspace['id']}/members/{viewer.id}/",
        token=owner.access_token,
    )
    assert removed.status == 204
    before = len(await items(api, viewer))
    lst = await create_list(api, owner, world.board_id)
    refused = await api.post(
        f"/api/v1/lists/{lst['id']}/cards/",
        {"title": "x", "assignees": [viewer.id]},
        token=owner.access_token,
    )
    assert refused.status == 400
    doc = await insert_document(ctx, world.workspace["id"])
    share = await api.put(
        f"/api/v1/documents/{doc}/grants/{viewer.id}/", {"role": "viewer"}, token=owner.access_token
    )
    assert share.status == 404
    assert len(await items(api, viewer)) == before
