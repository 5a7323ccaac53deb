"""The admin API: the permission matrix (anonymous 401, non-admin 403, admin 200), the effects of
deactivate/activate through HTTP, and the audit event on the instance's activity subject."""

from __future__ import annotations

import uuid

import pytest

from bus.jetstream import workspace_activity_subject
from services import user_admin
from services.workspace_jobs import WORKSPACE_PURGE_JOB
from tests.ws_helpers import Collector, create_workspace

USERS = "/api/v1/admin/users/"
ME = "/api/v1/auth/me/"
LOGIN = "/api/v1/auth/login/"


def deactivate_path(user_id: str) -> str:
    return f"{USERS}{user_id}/deactivate/"


def activate_path(user_id: str) -> str:
    return f"{USERS}{user_id}/activate/"


async def make_admin(ctx, make_user):
    admin = await make_user("root")
    await user_admin.set_admin(ctx, admin.id, True)
    return admin


@pytest.mark.parametrize("op", ["list", "deactivate", "activate"])
async def test_permission_matrix(api, ctx, make_user, op):
    admin = await make_admin(ctx, make_user)
    plain = await make_user("plain")
    target = await make_user("target")
    method, path = {
        "list": ("get", USERS),
        "deactivate": ("post", deactivate_path(target.id)),
        "activate": ("post", activate_path(target.id)),
    }[op]

    async def call(token):
        if method == "get":
            return await api.get(path, token=token)
        return await api.post(path, {}, token=token)

    anonymous = await call(None)
    assert anonymous.status == 401
    refused = await call(plain.access_token)
    assert (refused.status, refused.error_code) == (403, "admin_only")
    assert (await api.get(ME, token=target.access_token)).status == 200  # nothing changed
    assert (await call(admin.access_token)).status == 200

    # The flag removed: the same admin is refused on the next call (no cache to expire).
    await user_admin.set_admin(ctx, admin.id, False)
    assert (await call(admin.access_token)).status == 403


async def test_deactivate_through_the_api_locks_out_and_is_audited(api, ctx, make_user):
    admin = await make_admin(ctx, make_user)
    target = await make_user("target")
    audit = await Collector().start(ctx, workspace_activity_subject(user_admin.INSTANCE_AUDIT_ID))
    try:
        done = await api.post(deactivate_path(target.id), {}, token=admin.access_token)
        assert done.status == 200, done.body
        assert (done.body["id"], done.body["is_active"]) == (target.id, False)
        assert (await api.get(ME, token=target.access_token)).status == 401
        login = await api.post(LOGIN, {"email": target.email, "password": target.password})
        assert login.status == 401

        event, headers = await audit.wait_for(lambda e: e["type"] == "admin.user_deactivated")
        assert event["actor_id"] == admin.id
        assert event["data"] == {"user_id": target.id, "via": "api"}
        assert headers.get("Nats-Msg-Id") == event["id"]

        again = await api.post(activate_path(target.id), {}, token=admin.access_token)
        assert (again.status, again.body["is_active"]) == (200, True)
        await audit.wait_for(lambda e: e["type"] == "admin.user_activated")
        login = await api.post(LOGIN, {"email": target.email, "password": target.password})
        assert login.status == 200
    finally:
        await audit.stop()


async def test_listing_pages_by_email_and_bad_input_names_the_field(api, ctx, make_user):
    admin = await make_admin(ctx, make_user)
    first = await api.get(f"{USERS}?limit=1", token=admin.access_token)
    assert first.status == 200 and len(first.body["items"]) == 1
    after = first.body["next_after"]
    assert after == first.body["items"][0]["email"]
    second = await api.get(f"{USERS}?limit=1&after={after}", token=admin.access_token)
    assert second.body["items"][0]["email"].lower() > after.lower()

    bad = await api.get(f"{USERS}?limit=0", token=admin.access_token)
    assert bad.status == 400 and "limit" in bad.body["error"]["fields"]
    body = await api.post(deactivate_path(admin.id), {"x": 1}, token=admin.access_token)
    assert body.status == 400
    unknown = await api.post(deactivate_path(str(uuid.uuid4())), {}, token=admin.access_token)
    assert (unknown.status, unknown.error_code) == (404, "user_not_found")
    malformed = await api.post(deactivate_path("nope"), {}, token=admin.access_token)
    assert malformed.status == 404
    assert (await api.get(ME, token=admin.access_token)).status == 200  # nothing changed


def restore_path(workspace_id: str) -> str:
    return f"/api/v1/admin/workspaces/{workspace_id}/restore/"


async def test_restore_a_deleted_workspace_within_its_grace_period(api, ctx, make_user):
    admin = await make_admin(ctx, make_user)
    owner = await make_user("owner")
    ws = await create_workspace(api, owner)
    ws_url = f"/api/v1/workspaces/{ws['id']}/"
    assert (await api.post(restore_path(ws["id"]), {}, token=admin.access_token)).status == 409
    assert (await api.delete(ws_url, token=owner.access_token)).status == 200
    assert (await api.get(ws_url, token=owner.access_token)).status == 404

    assert (await api.post(restore_path(ws["id"]), {})).status == 401
    refused = await api.post(restore_path(ws["id"]), {}, token=owner.access_token)
    assert (refused.status, refused.error_code) == (403, "admin_only")
    listing = await api.get("/api/v1/admin/workspaces/?limit=100", token=admin.access_token)
    (row,) = [w for w in listing.body["items"] if w["id"] == ws["id"]]
    assert row["deleted_at"] is not None

    activity_feed = await Collector().start(ctx, workspace_activity_subject(ws["id"]))
    audit = await Collector().start(ctx, workspace_activity_subject(user_admin.INSTANCE_AUDIT_ID))
    try:
        done = await api.post(restore_path(ws["id"]), {}, token=admin.access_token)
        assert (done.status, done.body["deleted_at"]) == (200, None), done.body
        assert (await api.get(ws_url, token=owner.access_token)).status == 200
        await activity_feed.wait_for(lambda e: e["type"] == "workspace.restored")
        event, _ = await audit.wait_for(lambda e: e["type"] == "admin.workspace_restored")
        assert event["data"]["workspace_id"] == ws["id"] and event["actor_id"] == admin.id
    finally:
        await activity_feed.stop()
        await audit.stop()

    # Past the grace period: 410, and the workspace stays deleted.
    assert (await api.delete(ws_url, token=owner.access_token)).status == 200
    await ctx.db.execute(
        "UPDATE workspaces SET deleted_at = now() - make_interval(secs => $2) WHERE id = $1",
        ws["id"],
        ctx.settings.workspace_purge_grace_s + 60,
    )
    late = await api.post(restore_path(ws["id"]), {}, token=admin.access_token)
    assert (late.status, late.error_code) == (410, "grace_expired")
    assert (await api.get(ws_url, token=owner.access_token)).status == 404
    unknown = await api.post(restore_path(str(uuid.uuid4())), {}, token=admin.access_token)
    assert (unknown.status, unknown.error_code) == (404, "workspace_not_found")


async def test_jobs_view_and_run_now(api, ctx, make_user):
    admin = await make_admin(ctx, make_user)
    plain = await make_user("plain")
    assert (await api.get("/api/v1/admin/jobs/")).status == 401
    assert (await api.get("/api/v1/admin/jobs/", token=plain.access_token)).status == 403
    run_url = f"/api/v1/admin/jobs/{WORKSPACE_PURGE_JOB}/run/"
    assert (await api.post(run_url, {}, token=plain.access_token)).status == 403

    listing = await api.get("/api/v1/admin/jobs/", token=admin.access_token)
    assert listing.status == 200
    names = [job["name"] for job in listing.body["items"]]
    assert WORKSPACE_PURGE_JOB in names and names == sorted(names)

    audit = await Collector().start(ctx, workspace_activity_subject(user_admin.INSTANCE_AUDIT_ID))
    try:
        ran = await api.post(run_url, {}, token=admin.access_token)
        assert ran.status == 200, ran.body
        assert ran.body["ran"] is True
        latest = ran.body["job"]["last_runs"][0]
        assert (latest["job"], latest["outcome"]) == (WORKSPACE_PURGE_JOB, "ok")
        assert "purged" in latest["counts"]
        event, _ = await audit.wait_for(lambda e: e["type"] == "admin.job_run")
        assert event["data"]["job"] == WORKSPACE_PURGE_JOB
    finally:
        await audit.stop()
    unknown = await api.post("/api/v1/admin/jobs/nope/run/", {}, token=admin.access_token)
    assert (unknown.status, unknown.error_code) == (404, "job_not_found")
    long = await api.post(f"/api/v1/admin/jobs/{'x' * 5000}/run/", {}, token=admin.access_token)
    assert (long.status, long.error_code) == (404, "job_not_found")
    assert len(str(long.body)) < 1000  # named back by its start only
