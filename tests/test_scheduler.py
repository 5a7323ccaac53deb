"""The job scheduler: runs on schedule, one node at a time per job (advisory lock), survives a
failing job, stops cleanly, and carries the document jobs."""

from __future__ import annotations

import asyncio
import dataclasses

import pytest

from core.errors import Unavailable
from models.locks import LockNamespace
from server import scheduler as scheduler_module
from server.app import build_context
from server.scheduler import Scheduler
from services import snapshot_job


def enabled(ctx) -> Scheduler:
    ctx.settings = dataclasses.replace(ctx.settings, scheduler_enabled=True)
    return Scheduler(ctx)


async def test_runs_jobs_on_their_interval_with_safe_defaults(ctx):
    sched = enabled(ctx)
    runs = asyncio.Queue()

    async def job(job_ctx) -> str:
        await runs.put(job_ctx is ctx)
        return "done"

    sched.register("tick", job, 0.2)
    await sched.start()
    try:
        assert await asyncio.wait_for(runs.get(), 5)
        assert await asyncio.wait_for(runs.get(), 5)  # and again
        scheduled = sched._scheduler.get_job("tick")
        assert scheduled.coalesce is True and scheduled.max_instances == 1
        assert scheduled.misfire_grace_time == int(ctx.settings.scheduler_misfire_grace_s)
    finally:
        await sched.stop()
    assert sched.last_runs["tick"].ran and sched.last_runs["tick"].result == "done"
    assert not sched.running


async def test_disabled_scheduler_runs_nothing_but_run_now_works(ctx):
    sched = Scheduler(ctx)  # the test settings leave the scheduler off
    calls = []

    async def job(_ctx) -> None:
        calls.append(1)

    sched.register("manual", job, 0.05)
    await sched.start()
    assert not sched.running
    run = await sched.run_now("manual")
    assert run.ran and calls == [1]
    await sched.stop()


async def _backend_gone(ctx, pid: int) -> None:
    # Polling Postgres is the only way to observe the exit; bounded by the caller's wait_for.
    while await ctx.db.fetchval("SELECT count(*) FROM pg_stat_activity WHERE pid = $1", pid):  # noqa: ASYNC110
        await asyncio.sleep(0.02)


async def test_one_node_at_a_time_and_a_lost_lock_frees_the_job(ctx, settings):
    other = build_context(settings)
    await other.start()
    try:
        first, second = Scheduler(ctx), Scheduler(other)
        inside, release = asyncio.Event(), asyncio.Event()

        async def slow(_ctx) -> None:
            inside.set()
            await release.wait()

        async def quick(_ctx) -> str:
            return "ran"

        first.register("exclusive", slow, 60)
        second.register("exclusive", quick, 60)
        running = asyncio.ensure_future(first.run_now("exclusive"))
        await asyncio.wait_for(inside.wait(), 5)
        assert (await second.run_now("exclusive")).ran is False
        # The holder's connection dies (R9/R10): the lock goes with it, another node may run.
        holder = await ctx.db.fetchval(
            "SELECT pid FROM pg_locks WHERE locktype = 'advisory' AND classid = $1"
            " AND objid = hashtext('exclusive')::oid AND granted",
            LockNamespace.JOB,
        )
        await ctx.db.execute("SELECT pg_terminate_backend($1)", holder)
        # pg_terminate_backend only signals the backend; its locks go when it has exited.
        await asyncio.wait_for(_backend_gone(other, holder), 10)
        assert (await second.run_now("exclusive")).result == "ran"
        release.set()
        with pytest.raises(Unavailable):
            await running  # the stale run learns its transaction is gone
    finally:
        await other.stop()


async def test_a_failing_job_is_logged_and_runs_again(ctx):
    sched = enabled(ctx)
    attempts = asyncio.Queue()

    async def flaky(_ctx) -> None:
        await attempts.put(1)
        raise RuntimeError("boom")

    sched.register("flaky", flaky, 0.1)
    await sched.start()
    try:
        for _ in range(2):
            await asyncio.wait_for(attempts.get(), 5)
    finally:
        await sched.stop()


async def test_stop_waits_for_a_running_job_then_cancels(ctx, monkeypatch):
    monkeypatch.setattr(scheduler_module, "STOP_TIMEOUT_S", 0.2)
    sched = enabled(ctx)
    started, cancelled = asyncio.Event(), asyncio.Event()

    async def stuck(_ctx) -> None:
        started.set()
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            cancelled.set()
            raise

    sched.register("stuck", stuck, 0.05)
    await sched.start()
    await asyncio.wait_for(started.wait(), 5)
    await asyncio.wait_for(sched.stop(), 5)
    assert cancelled.is_set()


def test_register_rejects_duplicates_and_bad_intervals(ctx):
    sched = Scheduler(ctx)

    async def job(_ctx) -> None:
        return None

    sched.register("a", job, 1)
    with pytest.raises(ValueError):
        sched.register("a", job, 1)
    with pytest.raises(ValueError):
        sched.register("b", job, 0)


async def test_the_node_carries_the_document_jobs(ctx):
    sched = ctx.scheduler
    assert {snapshot_job.SNAPSHOT_JOB, snapshot_job.STREAM_HEALTH_JOB} <= set(sched.jobs)
    # Other tests' documents share the stream: pick nothing by backlog, just prove the wiring.
    ctx.settings = dataclasses.replace(ctx.settings, snapshot_min_updates=10**9)
    run = await sched.run_now(snapshot_job.SNAPSHOT_JOB)
    assert run.ran and isinstance(run.result, snapshot_job.JobReport)
    health = await sched.run_now(snapshot_job.STREAM_HEALTH_JOB)
    assert health.ran and isinstance(health.result, list)
