"""Invitations: create (+ outbox row), accept (single use, expiry, email match), list, revoke."""

from __future__ import annotations

import asyncio
import hashlib
import logging
import re
import uuid

import pytest

from bus.jetstream import workspace_activity_subject
from bus.schemas.activity import ActivityEventSchema
from tests.ws_helpers import Collector, fast_user, invite, workspace_with, ws_path

# An accept path or the web app's invitation page (the mail's link) in a log line whose token
# segment is anything but the redaction marker.
_LOGGED_ACCEPT_TOKEN = re.compile(
    r"/invitations/(?!\[REDACTED\]/)[^/\s\"']+/accept|/invite/(?!\[REDACTED\])[^/\s\"'?]+"
)


@pytest.fixture(autouse=True)
def _no_invitation_token_in_logs(caplog):
    """Every test here drives the invitation flow; none may leave a token in any log line."""
    caplog.set_level(logging.DEBUG)
    yield
    logged = "\n".join(record.getMessage() for record in caplog.get_records("call"))
    leaked = _LOGGED_ACCEPT_TOKEN.findall(logged)
    assert not leaked, leaked


def new_email() -> str:
    return f"invitee-{uuid.uuid4().hex[:10]}@example.com"


async def test_invite_returns_the_token_once_and_stores_only_its_hash(api, ctx):
    workspace, users = await workspace_with(api, ctx)
    email = new_email()
    created = await invite(api, workspace["id"], users["owner"], email, "member")
    assert created.status == 201, created.body
    body = created.body
    token = body["token"]
    assert body["accept_path"] == f"/api/v1/invitations/{token}/accept/"
    assert (body["email"], body["role"], body["invited_by"]) == (email, "member", users["owner"].id)
    row = await ctx.db.fetchrow("SELECT * FROM invitations WHERE id = $1", body["id"])
    assert row["token_hash"] == hashlib.sha256(token.encode()).hexdigest()
    assert token not in {str(v) for v in dict(row).values()}
    outbox = await ctx.db.fetchrow(
        "SELECT payload FROM outbox WHERE kind = 'invitation_email'"
        " AND payload->>'invitation_id' = $1",
        body["id"],
    )
    payload = outbox["payload"]
    assert payload["to"] == email
    assert payload["workspace_name"] == workspace["name"]
    assert payload["inviter_name"] == users["owner"].display_name
    assert payload["invite_path"] == f"/invite/{token}"  # the web app's page, not the API route
    assert payload["role"] == "member"


async def test_invitation_defaults_to_member_and_expires_in_a_week(api, ctx):
    workspace, users = await workspace_with(api, ctx)
    created = await api.post(
        ws_path(workspace["id"], "invite/"),
        {"email": new_email()},
        token=users["owner"].access_token,
    )
    assert created.body["role"] == "member"
    days = await ctx.db.fetchval(
        "SELECT extract(epoch FROM expires_at - created_at) / 86400 FROM invitations WHERE id = $1",
        created.body["id"],
    )
    assert 6.99 < float(days) < 7.01


@pytest.mark.parametrize(
    "inviter,role,status",
    [
        ("member", "admin", 403),  # Member invites as Admin
        ("member", "owner", 403),
        ("admin", "owner", 403),  # only an Owner invites Owners
        ("guest", "guest", 403),  # Guests cannot invite
        ("member", "member", 201),
        ("admin", "admin", 201),
        ("owner", "owner", 201),
    ],
)
async def test_invite_role_is_capped_by_the_inviters(api, ctx, inviter, role, status):
    workspace, users = await workspace_with(api, ctx, "admin", "member", "guest")
    response = await invite(api, workspace["id"], users[inviter], new_email(), role)
    assert response.status == status, response.body
    if status == 403:
        count = await ctx.db.fetchval(
            "SELECT count(*) FROM invitations WHERE workspace_id = $1", workspace["id"]
        )
        assert count == 3  # only the fixture's own invitations


async def test_inviting_a_member_or_a_pending_email_conflicts(api, ctx):
    workspace, users = await workspace_with(api, ctx, "member")
    existing = await invite(
        api, workspace["id"], users["owner"], users["member"].email.upper(), "guest"
    )
    assert existing.status == 409
    assert existing.error_code == "already_member"
    email = new_email()
    assert (await invite(api, workspace["id"], users["owner"], email, "guest")).status == 201
    again = await invite(api, workspace["id"], users["owner"], email.upper(), "guest")
    assert again.status == 409
    assert again.error_code == "invitation_pending"


async def test_an_expired_invitation_can_be_replaced(api, ctx):
    workspace, users = await workspace_with(api, ctx)
    email = new_email()
    first = await invite(api, workspace["id"], users["owner"], email, "guest")
    await ctx.db.execute(
        "UPDATE invitations SET expires_at = now() - interval '1 second' WHERE id = $1",
        first.body["id"],
    )
    second = await invite(api, workspace["id"], users["owner"], email, "member")
    assert second.status == 201


@pytest.mark.parametrize(
    "body",
    [
        {},
        {"email": "not-an-email"},
        {"email": 5},
        {"email": " a@example.com"},
        {"email": "a@example.com", "role": "root"},
        {"email": "a@example.com", "token": "chosen"},
        {"email": "a@example.com", "expires_at": "2100-01-01T00:00:00Z"},
    ],
)
async def test_invite_rejects_bad_input(api, ctx, body):
    workspace, users = await workspace_with(api, ctx)
    response = await api.post(
        ws_path(workspace["id"], "invite/"), body, token=users["owner"].access_token
    )
    assert response.status == 400, response.body


async def test_accept_joins_with_the_invited_role_once(api, ctx):
    workspace, users = await workspace_with(api, ctx)
    invitee = await fast_user(ctx, "invitee")
    created = await invite(api, workspace["id"], users["owner"], invitee.email.upper(), "guest")
    accepted = await api.post(created.body["accept_path"], token=invitee.access_token)
    assert accepted.status == 200, accepted.body
    assert accepted.body["id"] == workspace["id"]
    assert accepted.body["my_role"] == "guest"
    twice = await api.post(created.body["accept_path"], token=invitee.access_token)
    assert twice.status == 410
    assert twice.error_code == "invitation_used"


async def test_accept_refuses_expired_revoked_foreign_and_unknown(api, ctx):
    workspace, users = await workspace_with(api, ctx)
    owner = users["owner"]
    invitee = await fast_user(ctx, "invitee")
    someone_else = await fast_user(ctx, "else")

    expired = await invite(api, workspace["id"], owner, invitee.email, "member")
    await ctx.db.execute(
        "UPDATE invitations SET expires_at = now() - interval '1 second' WHERE id = $1",
        expired.body["id"],
    )
    response = await api.post(expired.body["accept_path"], token=invitee.access_token)
    assert (response.status, response.error_code) == (410, "invitation_expired")

    foreign = await invite(api, workspace["id"], owner, new_email(), "member")
    response = await api.post(foreign.body["accept_path"], token=someone_else.access_token)
    assert (response.status, response.error_code) == (403, "invitation_email_mismatch")

    revoked = await invite(api, workspace["id"], owner, invitee.email, "member")
    path = ws_path(workspace["id"], f"invitations/{revoked.body['id']}/")
    assert (await api.delete(path, token=owner.access_token)).status == 204
    response = await api.post(revoked.body["accept_path"], token=invitee.access_token)
    assert (response.status, response.error_code) == (410, "invitation_revoked")

    for token in ("x" * 43, "short", "bad%20chars" * 3, "a" * 300):
        response = await api.post(
            f"/api/v1/invitations/{token}/accept/", token=invitee.access_token
        )
        assert (response.status, response.error_code) == (404, "invitation_not_found")
    assert (await api.post(revoked.body["accept_path"])).status == 401
    count = await ctx.db.fetchval(
        "SELECT count(*) FROM workspace_members WHERE workspace_id = $1", workspace["id"]
    )
    assert count == 1


async def test_accept_of_a_deleted_workspace_is_404(api, ctx):
    workspace, users = await workspace_with(api, ctx)
    invitee = await fast_user(ctx, "invitee")
    created = await invite(api, workspace["id"], users["owner"], invitee.email, "member")
    await api.delete(ws_path(workspace["id"]), token=users["owner"].access_token)
    response = await api.post(created.body["accept_path"], token=invitee.access_token)
    assert response.status == 404


async def test_concurrent_accepts_admit_once(api, ctx):
    workspace, users = await workspace_with(api, ctx)
    invitee = await fast_user(ctx, "invitee")
    created = await invite(api, workspace["id"], users["owner"], invitee.email, "member")
    responses = await asyncio.gather(
        *(api.post(created.body["accept_path"], token=invitee.access_token) for _ in range(4))
    )
    assert sorted(r.status for r in responses) == [200, 410, 410, 410]


async def test_accept_body_must_be_empty(api, ctx):
    workspace, users = await workspace_with(api, ctx)
    invitee = await fast_user(ctx, "invitee")
    created = await invite(api, workspace["id"], users["owner"], invitee.email, "member")
    response = await api.post(
        created.body["accept_path"], {"role": "owner"}, token=invitee.access_token
    )
    assert response.status == 400


async def test_pending_list_admins_see_all_members_their_own(api, ctx):
    workspace, users = await workspace_with(api, ctx, "admin", "member", "guest")
    ws = workspace["id"]
    by_admin = await invite(api, ws, users["admin"], new_email(), "guest")
    by_member = await invite(api, ws, users["member"], new_email(), "guest")
    expired = await invite(api, ws, users["admin"], new_email(), "guest")
    await ctx.db.execute(
        "UPDATE invitations SET expires_at = now() - interval '1 second' WHERE id = $1",
        expired.body["id"],
    )
    path = ws_path(ws, "invitations/")
    admin_view = await api.get(path, token=users["admin"].access_token)
    ids = [i["id"] for i in admin_view.body["items"]]
    assert ids == [by_admin.body["id"], by_member.body["id"]]  # the accepted fixture ones are gone
    assert "token" not in admin_view.body["items"][0]
    member_view = await api.get(path, token=users["member"].access_token)
    assert [i["id"] for i in member_view.body["items"]] == [by_member.body["id"]]
    assert (await api.get(path, token=users["guest"].access_token)).status == 403
    paged = await api.get(f"{path}?limit=1", token=users["admin"].access_token)
    assert paged.body["next_offset"] == 1


async def test_revoke_rules(api, ctx):
    workspace, users = await workspace_with(api, ctx, "admin", "member")
    ws = workspace["id"]
    by_admin = await invite(api, ws, users["admin"], new_email(), "guest")
    by_member = await invite(api, ws, users["member"], new_email(), "guest")

    def path(invitation):
        return ws_path(ws, f"invitations/{invitation.body['id']}/")

    assert (await api.delete(path(by_admin), token=users["member"].access_token)).status == 403
    assert (await api.delete(path(by_member), token=users["member"].access_token)).status == 204
    assert (await api.delete(path(by_member), token=users["member"].access_token)).status == 204
    assert (await api.delete(path(by_admin), token=users["owner"].access_token)).status == 204
    unknown = await api.delete(
        ws_path(ws, f"invitations/{uuid.uuid4()}/"), token=users["owner"].access_token
    )
    assert (unknown.status, unknown.error_code) == (404, "invitation_not_found")
    malformed = await api.delete(
        ws_path(ws, "invitations/nope/"), token=users["owner"].access_token
    )
    assert malformed.status == 404
    invitee = await fast_user(ctx, "invitee")
    used = await invite(api, ws, users["owner"], invitee.email, "guest")
    await api.post(used.body["accept_path"], token=invitee.access_token)
    response = await api.delete(path(used), token=users["owner"].access_token)
    assert (response.status, response.error_code) == (409, "invitation_used")


async def test_invitation_activity_events(api, ctx):
    workspace, users = await workspace_with(api, ctx)
    ws = workspace["id"]
    invitee = await fast_user(ctx, "invitee")
    collector = await Collector().start(ctx, workspace_activity_subject(ws))
    try:
        created = await invite(api, ws, users["owner"], invitee.email, "member")
        revoked = await invite(api, ws, users["owner"], new_email(), "guest")
        await api.delete(
            ws_path(ws, f"invitations/{revoked.body['id']}/"), token=users["owner"].access_token
        )
        await api.post(created.body["accept_path"], token=invitee.access_token)
        events = {}
        for kind in (
            "invitation.created",
            "invitation.revoked",
            "invitation.accepted",
            "member.added",
        ):
            events[kind], _ = await collector.wait_for(
                lambda e, kind=kind: (
                    e["type"] == kind and e["actor_id"] != users["owner"].id
                    if kind in ("invitation.accepted", "member.added")
                    else e["type"] == kind
                )
            )
    finally:
        await collector.stop()
    for event in events.values():
        assert ActivityEventSchema().validate(event) == {}
        assert created.body["token"] not in str(event)
    assert events["invitation.accepted"]["data"] == {
        "invitation_id": created.body["id"],
        "user_id": invitee.id,
        "role": "member",
    }
    assert events["member.added"]["data"]["via"] == "invitation"


async def test_invitation_tokens_never_reach_the_logs(api, ctx, caplog):
    """Access log lines, Tornado's own 4xx warnings (405 here) and the query form are all redacted;
    the route stays recognisable."""
    workspace, users = await workspace_with(api, ctx)
    invitee = await fast_user(ctx, "invitee")
    created = await invite(api, workspace["id"], users["owner"], invitee.email, "member")
    token, accept = created.body["token"], created.body["accept_path"]
    caplog.clear()
    assert (await api.get(accept, token=invitee.access_token)).status == 405
    assert (await api.post(f"{accept}?token={token}", token=invitee.access_token)).status == 200
    assert (await api.post(accept, token=invitee.access_token)).status == 410
    logged = caplog.text
    assert token not in logged
    assert logged.count("/api/v1/invitations/[REDACTED]/accept/") >= 3
    assert "token=[REDACTED]" in logged


async def test_the_invitation_page_keeps_its_token_out_of_the_logs(api, ctx, caplog):
    """The mail's link is a web app page: its access log line names the route, not the token;
    opening it changes nothing (the page accepts only once the person is signed in)."""
    workspace, users = await workspace_with(api, ctx)
    invitee = await fast_user(ctx, "invitee")
    created = await invite(api, workspace["id"], users["owner"], invitee.email, "member")
    token = created.body["token"]
    caplog.clear()
    for path in (f"/invite/{token}", f"/invite/{token}/", f"/invite/{token}?token={token}"):
        page = await api.get(path)
        assert page.status == 200, path
        assert '<div id="root">' in page.body
    assert (await api.request("HEAD", f"/invite/{token}")).status == 200
    logged = caplog.text
    assert token not in logged
    assert logged.count("/invite/[REDACTED]") >= 4
    # A mangled link (not UTF-8) is still the page, which then says the link is not valid.
    assert (await api.get("/invite/%ff%00")).status == 200
    pending = await api.get(
        f"/api/v1/workspaces/{workspace['id']}/invitations/", token=users["owner"].access_token
    )
    assert created.body["id"] in [item["id"] for item in pending.body["items"]]
