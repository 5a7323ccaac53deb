"""The scheduled workspace jobs: deferred activity events go out, deleted workspaces are purged."""

from __future__ import annotations

import dataclasses

from bus import outbox
from bus.outbox import OUTBOX_RELAY_JOB
from services import activity
from services.workspace_jobs import WORKSPACE_PURGE_JOB
from tests.ws_helpers import create_workspace, fast_user


async def test_jobs_are_registered_with_the_scheduler(ctx):
    jobs = ctx.scheduler.jobs
    assert OUTBOX_RELAY_JOB in jobs and WORKSPACE_PURGE_JOB in jobs


async def test_purge_job_removes_workspaces_past_their_grace(api, ctx):
    owner = await fast_user(ctx)
    kept = await create_workspace(api, owner)
    doomed = await create_workspace(api, owner)
    deleted = await api.delete(f"/api/v1/workspaces/{doomed['id']}/", token=owner.access_token)
    assert deleted.status in (200, 202, 204), deleted.body
    object.__setattr__(
        ctx, "settings", dataclasses.replace(ctx.settings, workspace_purge_grace_s=0)
    )
    run = await ctx.scheduler.run_now(WORKSPACE_PURGE_JOB)
    assert run.ran
    rows = await ctx.db.fetch(
        "SELECT id FROM workspaces WHERE id = ANY($1::uuid[])", [kept["id"], doomed["id"]]
    )
    assert [str(r["id"]) for r in rows] == [kept["id"]]


async def test_relay_job_sends_staged_events(api, ctx):
    owner = await fast_user(ctx)
    workspace = await create_workspace(api, owner)
    async with ctx.db.transaction() as conn:
        staged = await outbox.stage(
            conn, activity.event(workspace["id"], "board.created", owner.id, {"n": 1})
        )
    await ctx.db.execute(
        "UPDATE outbox SET available_at = now() - interval '1 hour' WHERE id = $1",
        staged.row_id,
    )
    assert (await ctx.scheduler.run_now(OUTBOX_RELAY_JOB)).ran
    processed = await ctx.db.fetchval(
        "SELECT processed_at IS NOT NULL FROM outbox WHERE id = $1", staged.row_id
    )
    assert processed
