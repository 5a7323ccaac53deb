"""The job history: every run that takes a job's lock leaves a `job_runs` row (start, end,
outcome, counts, error), written by the scheduler wrapper — for a real job against the real
database, and for a failing one (its own transaction rolled back, the row still there)."""

from __future__ import annotations

import json
import uuid

import pytest

from models.repo import job_runs
from ops.exit_codes import ExitCode
from services.workspace_jobs import WORKSPACE_PURGE_JOB
from tests.test_ops_documents import collab
from tests.ws_helpers import create_workspace


async def test_a_real_job_run_leaves_its_history_row(api, ctx, make_user):
    owner = await make_user("owner")
    ws = await create_workspace(api, owner)
    assert (
        await api.delete(f"/api/v1/workspaces/{ws['id']}/", token=owner.access_token)
    ).status == 200
    await ctx.db.execute(
        "UPDATE workspaces SET deleted_at = now() - make_interval(secs => $2) WHERE id = $1",
        ws["id"],
        ctx.settings.workspace_purge_grace_s + 60,
    )

    run = await ctx.scheduler.run_now(WORKSPACE_PURGE_JOB)

    assert run.ran
    assert await ctx.db.fetchval("SELECT count(*) FROM workspaces WHERE id = $1", ws["id"]) == 0
    latest = (await job_runs.recent_runs(ctx.db, WORKSPACE_PURGE_JOB, 1))[0]
    assert latest["outcome"] == "ok" and latest["error"] is None
    assert latest["counts"]["purged"] >= 1
    assert latest["node_id"] == ctx.settings.node_id
    assert latest["started_at"] <= latest["finished_at"]


async def test_a_failing_job_is_recorded_with_its_error(ctx):
    async def broken(job_ctx) -> None:
        await job_ctx.db.execute("SELECT 1")
        raise RuntimeError("disk on fire")

    name = f"broken_{uuid.uuid4().hex[:8]}"
    ctx.scheduler.register(name, broken, 3600)
    with pytest.raises(RuntimeError):
        await ctx.scheduler.run_now(name)
    (row,) = await job_runs.recent_runs(ctx.db, name, 5)
    assert row["outcome"] == "failed" and "disk on fire" in row["error"]
    assert row["counts"] == {}


async def test_collab_jobs_list_and_run(ctx, settings):
    env = {"REDIS_URL": settings.redis_url}
    code, out, err = await collab(settings, "jobs", "list", "--json", env=env)
    assert code == ExitCode.OK, err
    assert WORKSPACE_PURGE_JOB in [job["name"] for job in json.loads(out)]

    code, out, err = await collab(settings, "jobs", "run", WORKSPACE_PURGE_JOB, "--json", env=env)
    assert code == ExitCode.OK, err
    result = json.loads(out)
    assert result["ran"] is True
    assert result["job"]["last_runs"][0]["outcome"] == "ok"

    code, out, err = await collab(settings, "jobs", "run", "nope", "--json", env=env)
    assert code == ExitCode.NOT_FOUND and "no such job" in err
