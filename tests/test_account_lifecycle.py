"""A user's own account: list and end sessions (a revoked session's refresh is 401 and its socket
closes), deactivate, delete (password asked again; refused while sole owner of a workspace; the
deleted account cannot log in, its email is free again), and bad input changing nothing."""

from __future__ import annotations

import uuid

import pytest

from bus.jetstream import workspace_activity_subject
from core.errors import Conflict
from services import user_admin
from tests.notification_support import InboxSocket
from tests.ws_helpers import Collector, add_member, create_workspace

SESSIONS = "/api/v1/auth/sessions/"
OTHERS = "/api/v1/auth/sessions/revoke-others/"
LOGIN = "/api/v1/auth/login/"
REFRESH = "/api/v1/auth/token/refresh/"
ME = "/api/v1/auth/me/"
DEACTIVATE = "/api/v1/auth/me/deactivate/"
DELETE = "/api/v1/auth/me/delete/"
REGISTER = "/api/v1/auth/register/"


async def login(api, user, agent: str) -> dict:
    done = await api.post(
        LOGIN, {"email": user.email, "password": user.password}, headers={"User-Agent": agent}
    )
    assert done.status == 200, done.body
    return done.body


async def test_list_my_sessions(api, make_user):
    user, other = await make_user("me"), await make_user("other")
    phone = await login(api, user, "Phone/1.0")
    laptop = await login(api, user, "Laptop/2.0")

    listed = await api.get(SESSIONS, token=laptop["access_token"])
    assert listed.status == 200
    items = listed.body["items"]
    agents = [s["user_agent"] for s in items]
    assert "Phone/1.0" in agents and "Laptop/2.0" in agents
    assert len(items) == 3  # the fixture's own login too; nothing of the other user's
    (current,) = [s for s in items if s["current"]]
    assert current["user_agent"] == "Laptop/2.0"
    assert all(s["created_at"] <= s["last_used_at"] for s in items)
    # A refresh moves the session's "last used".
    before = next(s for s in items if s["user_agent"] == "Phone/1.0")["last_used_at"]
    assert (await api.post(REFRESH, {"refresh_token": phone["refresh_token"]})).status == 200
    after = await api.get(SESSIONS, token=laptop["access_token"])
    moved = next(s for s in after.body["items"] if s["user_agent"] == "Phone/1.0")
    assert moved["last_used_at"] > before
    assert (await api.get(SESSIONS, token=other.access_token)).body["items"][0]["current"]
    assert (await api.get(SESSIONS)).status == 401


async def test_revoke_one_session_closes_its_socket_and_refresh(api, make_user, http_server_port):
    user = await make_user("me")
    phone = await login(api, user, "Phone/1.0")
    sock = await InboxSocket.open(http_server_port[1], phone["access_token"])
    await sock.ready()
    listed = await api.get(SESSIONS, token=user.access_token)
    (phone_session,) = [s for s in listed.body["items"] if s["user_agent"] == "Phone/1.0"]

    done = await api.delete(f"{SESSIONS}{phone_session['id']}/", token=user.access_token)
    assert done.status == 204
    assert (await sock.closed())[0] == 4401
    assert (await api.post(REFRESH, {"refresh_token": phone["refresh_token"]})).status == 401
    assert (await api.get(ME, token=phone["access_token"])).status == 401
    # The caller's own session is untouched; the revoked one is gone from the list.
    assert (await api.get(ME, token=user.access_token)).status == 200
    ids = [s["id"] for s in (await api.get(SESSIONS, token=user.access_token)).body["items"]]
    assert phone_session["id"] not in ids
    again = await api.delete(f"{SESSIONS}{phone_session['id']}/", token=user.access_token)
    assert again.status == 204  # revoking a revoked session: nothing more to do


async def test_revoke_all_other_sessions(api, make_user, http_server_port):
    user = await make_user("me")
    phone, tablet = await login(api, user, "Phone"), await login(api, user, "Tablet")
    sock = await InboxSocket.open(http_server_port[1], tablet["access_token"])
    await sock.ready()

    done = await api.post(OTHERS, {}, token=user.access_token)
    assert (done.status, done.body) == (200, {"revoked": 2})
    assert (await sock.closed())[0] == 4401
    for pair in (phone, tablet):
        assert (await api.post(REFRESH, {"refresh_token": pair["refresh_token"]})).status == 401
    assert (await api.post(REFRESH, {"refresh_token": user.refresh_token})).status == 200
    listed = await api.get(SESSIONS, token=user.access_token)
    assert [s["current"] for s in listed.body["items"]] == [True]


async def test_someone_elses_session_is_not_found(api, make_user):
    user, other = await make_user("me"), await make_user("other")
    theirs = (await api.get(SESSIONS, token=other.access_token)).body["items"][0]["id"]
    for session_id in (theirs, str(uuid.uuid4())):
        refused = await api.delete(f"{SESSIONS}{session_id}/", token=user.access_token)
        assert (refused.status, refused.error_code) == (404, "session_not_found")
    assert (await api.post(REFRESH, {"refresh_token": other.refresh_token})).status == 200
    assert (await api.delete(f"{SESSIONS}not-a-uuid/", token=user.access_token)).status == 404
    assert (await api.delete(f"{SESSIONS}{theirs}/")).status == 401


async def test_deactivate_my_account(api, make_user, http_server_port):
    user = await make_user("me")
    sock = await InboxSocket.open(http_server_port[1], user.access_token)
    await sock.ready()
    wrong = await api.post(DEACTIVATE, {"password": "not it at all"}, token=user.access_token)
    assert (wrong.status, wrong.error_code) == (401, "invalid_credentials")
    assert (await api.get(ME, token=user.access_token)).status == 200  # nothing changed

    done = await api.post(DEACTIVATE, {"password": user.password}, token=user.access_token)
    assert done.status == 204
    assert (await sock.closed())[0] == 4401
    assert (await api.get(ME, token=user.access_token)).status == 401
    assert (await api.post(REFRESH, {"refresh_token": user.refresh_token})).status == 401
    relogin = await api.post(LOGIN, {"email": user.email, "password": user.password})
    assert relogin.status == 401


async def test_delete_my_account(api, ctx, make_user, http_server_port):
    owner, user = await make_user("owner"), await make_user("me")
    workspace = await create_workspace(api, owner)
    await add_member(api, workspace["id"], owner, user, "member")
    audit = await Collector().start(ctx, workspace_activity_subject(workspace["id"]))
    sock = await InboxSocket.open(http_server_port[1], user.access_token)
    await sock.ready()
    try:
        done = await api.post(DELETE, {"password": user.password}, token=user.access_token)
        assert done.status == 204, done.body
        assert (await sock.closed())[0] == 4401
        event, _ = await audit.wait_for(lambda e: e["type"] == "member.left")
        assert event["data"] == {"user_id": user.id, "role": "member"}
    finally:
        await audit.stop()
    relogin = await api.post(LOGIN, {"email": user.email, "password": user.password})
    assert (relogin.status, relogin.error_code) == (401, "invalid_credentials")
    assert (await api.post(REFRESH, {"refresh_token": user.refresh_token})).status == 401
    members = await api.get(
        f"/api/v1/workspaces/{workspace['id']}/members/", token=owner.access_token
    )
    assert user.id not in [m["user_id"] for m in members.body["items"]]
    row = await ctx.db.fetchrow(
        "SELECT email, display_name, is_active, deleted_at FROM users WHERE id = $1", user.id
    )
    assert row["email"] != user.email and row["display_name"] == "Deleted user"
    assert not row["is_active"] and row["deleted_at"] is not None
    # An instance admin cannot bring it back.
    with pytest.raises(Conflict) as refused:
        await user_admin.activate(ctx, user.id)
    assert refused.value.code == "account_deleted"
    # The address is free for a new account.
    again = await api.post(
        REGISTER, {"email": user.email, "password": "another long password", "display_name": "N"}
    )
    assert again.status == 201, again.body


async def test_a_sole_owner_cannot_delete_until_ownership_moves(api, ctx, make_user):
    owner, admin = await make_user("owner"), await make_user("admin")
    workspace = await create_workspace(api, owner)
    await add_member(api, workspace["id"], owner, admin, "admin")

    refused = await api.post(DELETE, {"password": owner.password}, token=owner.access_token)
    assert (refused.status, refused.error_code) == (409, "sole_owner")
    assert refused.body["error"]["fields"]["workspace_ids"] == [workspace["id"]]
    assert workspace["name"] in refused.body["error"]["message"]
    assert (await api.get(ME, token=owner.access_token)).status == 200  # nothing changed

    moved = await api.post(
        f"/api/v1/workspaces/{workspace['id']}/transfer-ownership/",
        {"user_id": admin.id},
        token=owner.access_token,
    )
    assert moved.status == 204
    done = await api.post(DELETE, {"password": owner.password}, token=owner.access_token)
    assert done.status == 204
    kept = await api.get(f"/api/v1/workspaces/{workspace['id']}/", token=admin.access_token)
    assert kept.status == 200 and kept.body["my_role"] == "owner"


@pytest.mark.parametrize(
    ("path", "body", "status"),
    [
        (DELETE, None, 400),
        (DELETE, {}, 400),
        (DELETE, {"password": ""}, 400),
        (DELETE, {"password": 123}, 400),
        (DELETE, {"password": "x", "extra": 1}, 400),
        (DELETE, {"password": "pa\u0000ss"}, 400),
        (DELETE, {"password": "wrong password!"}, 401),
        (DELETE, ["password"], 400),
        (DEACTIVATE, {}, 400),
        (DEACTIVATE, {"password": "x" * 257}, 400),
        (DEACTIVATE, {"password": "wrong password!"}, 401),
        (OTHERS, {"all": True}, 400),
    ],
)
async def test_bad_input_changes_nothing(api, ctx, make_user, path, body, status):
    user = await make_user("me")
    other_session = await login(api, user, "Other")
    answer = await api.post(path, body, token=user.access_token)
    assert answer.status == status, answer.body
    assert (await api.get(ME, token=user.access_token)).status == 200
    assert (
        await api.post(REFRESH, {"refresh_token": other_session["refresh_token"]})
    ).status == 200
    assert await ctx.db.fetchval("SELECT deleted_at FROM users WHERE id = $1", user.id) is None


async def test_anonymous_calls_are_401(api):
    for path in (DELETE, DEACTIVATE, OTHERS):
        assert (await api.post(path, {"password": "whatever it is"})).status == 401
