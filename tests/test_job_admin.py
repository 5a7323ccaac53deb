"""Pausing and resuming jobs: over the admin API (permission matrix, bad input, audit) and the CLI;
a pause is honoured by every node's scheduled runs (a second node built from the same settings),
while an explicit run still runs."""

from __future__ import annotations

import json
import uuid

import pytest

from bus.jetstream import workspace_activity_subject
from models.repo import job_runs
from ops.exit_codes import ExitCode
from server.app import build_context
from services import user_admin
from services.workspace_jobs import WORKSPACE_PURGE_JOB
from tests.test_admin_api import make_admin
from tests.test_ops_documents import collab
from tests.ws_helpers import Collector

JOBS = "/api/v1/admin/jobs/"


def job_url(name: str, action: str) -> str:
    return f"{JOBS}{name}/{action}/"


def counting_job(calls: list[str], node: str):
    async def job(_ctx) -> int:
        calls.append(node)
        return 1

    return job


@pytest.mark.parametrize("action", ["pause", "resume"])
async def test_permission_matrix_and_bad_input(api, ctx, make_user, action):
    admin = await make_admin(ctx, make_user)
    plain = await make_user("plain")
    url = job_url(WORKSPACE_PURGE_JOB, action)
    assert (await api.post(url, {})).status == 401
    refused = await api.post(url, {}, token=plain.access_token)
    assert (refused.status, refused.error_code) == (403, "admin_only")
    assert not await job_runs.is_paused(ctx.db, WORKSPACE_PURGE_JOB)  # nothing changed
    unknown = await api.post(job_url("nope", action), {}, token=admin.access_token)
    assert (unknown.status, unknown.error_code) == (404, "job_not_found")
    # A non-admin learns nothing about which jobs exist: the same 403 for an unknown name.
    hidden = await api.post(job_url("nope", action), {}, token=plain.access_token)
    assert (hidden.status, hidden.error_code) == (403, "admin_only")
    for body in ({"paused": True}, [1], "x"):
        bad = await api.post(url, body, token=admin.access_token)
        assert bad.status == 400, body
    nul = await api.post(job_url("a\u0000b", action), {}, token=admin.access_token)
    assert nul.status in (400, 404)
    assert not await job_runs.is_paused(ctx.db, WORKSPACE_PURGE_JOB)


async def test_a_pause_holds_on_every_node_until_resumed(api, ctx, settings, make_user):
    admin = await make_admin(ctx, make_user)
    name = f"pausable_{uuid.uuid4().hex[:8]}"
    calls: list[str] = []
    ctx.scheduler.register(name, counting_job(calls, "a"), 3600)
    other = build_context(settings)
    other.scheduler.register(name, counting_job(calls, "b"), 3600)
    await other.db.start()
    audit = await Collector().start(ctx, workspace_activity_subject(user_admin.INSTANCE_AUDIT_ID))
    try:
        paused = await api.post(job_url(name, "pause"), {}, token=admin.access_token)
        assert paused.status == 200, paused.body
        assert paused.body["paused"] is True and paused.body["paused_by"] == admin.id
        event, _ = await audit.wait_for(
            lambda e: e["type"] == "admin.job_paused" and e["data"]["job"] == name
        )
        assert (event["actor_id"], event["data"]["via"]) == (admin.id, "api")
        again = await api.post(job_url(name, "pause"), {}, token=admin.access_token)
        assert again.body["paused_at"] == paused.body["paused_at"]  # the first pause stands

        listing = await api.get(JOBS, token=admin.access_token)
        (row,) = [job for job in listing.body["items"] if job["name"] == name]
        assert row["paused"] is True

        # Scheduled ticks (what APScheduler calls) skip it on both nodes, with no history row.
        for node in (ctx, other):
            tick = await node.scheduler.run_now(name, honour_pause=True)
            assert (tick.ran, tick.paused) == (False, True)
        assert calls == []
        assert await job_runs.recent_runs(ctx.db, name, 5) == []
        # An explicit run still runs (and is recorded).
        forced = await api.post(job_url(name, "run"), {}, token=admin.access_token)
        assert forced.body["ran"] is True and calls == ["a"]

        resumed = await api.post(job_url(name, "resume"), {}, token=admin.access_token)
        assert resumed.status == 200 and resumed.body["paused"] is False
        assert resumed.body["paused_at"] is None
        await audit.wait_for(
            lambda e: e["type"] == "admin.job_resumed" and e["data"]["job"] == name
        )
        tick = await other.scheduler.run_now(name, honour_pause=True)
        assert tick.ran and calls == ["a", "b"]
    finally:
        await audit.stop()
        await other.db.stop()


async def test_collab_jobs_pause_and_resume(ctx, settings):
    env = {"REDIS_URL": settings.redis_url}
    job = WORKSPACE_PURGE_JOB
    try:
        code, out, err = await collab(settings, "jobs", "pause", job, "--json", env=env)
        assert code == ExitCode.OK, err
        assert json.loads(out)["paused"] is True
        assert await job_runs.is_paused(ctx.db, job)
        code, out, err = await collab(settings, "jobs", "list", "--json", env=env)
        (row,) = [j for j in json.loads(out) if j["name"] == job]
        assert row["paused"] is True and row["paused_by"] is None  # the command line
    finally:
        code, out, err = await collab(settings, "jobs", "resume", job, "--json", env=env)
    assert code == ExitCode.OK, err
    assert json.loads(out)["paused"] is False
    assert not await job_runs.is_paused(ctx.db, job)

    code, _out, err = await collab(settings, "jobs", "pause", "nope", "--json", env=env)
    assert code == ExitCode.NOT_FOUND and "no such job" in err
    code, _out, _err = await collab(settings, "jobs", "pause", "--json", env=env)
    assert code == ExitCode.USAGE


# --- stream health ---------------------------------------------------------------------------

STREAM_HEALTH = "/api/v1/admin/stream-health/"


async def test_stream_health_over_the_admin_api(api, ctx, make_user):
    admin = await make_admin(ctx, make_user)
    plain = await make_user("plain")
    assert (await api.get(STREAM_HEALTH)).status == 401
    refused = await api.get(STREAM_HEALTH, token=plain.access_token)
    assert (refused.status, refused.error_code) == (403, "admin_only")

    health = await api.get(STREAM_HEALTH, token=admin.access_token)
    assert health.status == 200, health.body
    body = health.body
    assert body["stream"] == "COLLAB_DOCS" and body["level"] in ("ok", "warning", "critical")
    assert body["thresholds"] == {"warning": 0.5, "critical": 0.8}
    # The same numbers as the stream itself reports (what `collab stream-health` prints).
    info = await ctx.nats.jetstream.stream_info("COLLAB_DOCS")
    assert body["usage"]["max_bytes"] == info.config.max_bytes
    assert body["usage"]["max_msgs_per_subject"] == info.config.max_msgs_per_subject
    limits = {f["limit"] for f in body["findings"]}
    assert "max_bytes" in limits and "max_msgs_per_subject" in limits
