"""Periodic background jobs on every node, each run by one node at a time.

An APScheduler 3.x `AsyncIOScheduler` runs inside each node. APScheduler does not coordinate
processes, so every run first takes a Postgres advisory lock named after the job, transaction-level
on a pooled connection (asyncpg's pool would silently release a session lock when the connection
returns to it, DESIGN.md §7); a node that does not get the lock skips that tick. A lock is still
not a fence: jobs must be safe if a run on another node overlaps after a lost connection (the
snapshot job is, through its monotonic writes).

Other areas plug their jobs in with `scheduler.register(name, func, seconds)` from `build_context`;
`func` is `async def func(ctx) -> Any`, `ctx` being what the scheduler was built with. Runs that start late (a busy or paused event loop) are
coalesced into one and skipped past `scheduler_misfire_grace_s`; a run never overlaps itself
(`max_instances=1`). `run_now(name)` runs a job immediately with the same lock (tests, ops).

A paused job (`job_states.paused_at`, set through the admin API or `collab jobs pause`) is skipped by
every node's scheduled ticks: the flag is read under the job's lock, in Postgres, so all nodes see
the same answer. An explicit `run_now` still runs it (an admin asking for one run means it).

Every run is measured the same way whatever the job: `collab_job_runs_total{job,outcome}`,
`collab_job_failures_total`, `collab_job_duration_seconds` and `collab_job_items_processed_total
{job,item}` (the counts the job returned, which also go into its history row).
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Generic, Protocol, TypeVar

import structlog
from apscheduler.schedulers.asyncio import AsyncIOScheduler
from apscheduler.triggers.interval import IntervalTrigger

from core.errors import Unavailable
from models.db import Database
from models.locks import LockNamespace, try_xact_lock
from models.repo import job_runs
from server.metrics import JOB_DURATION, JOB_FAILURES, JOB_ITEMS, JOB_RUNS
from server.settings import Settings

log = structlog.get_logger(__name__)


class JobHost(Protocol):
    """What the scheduler itself uses; jobs get the whole host (the node's context)."""

    @property
    def settings(self) -> Settings: ...

    @property
    def db(self) -> Database: ...


H = TypeVar("H", bound=JobHost)
JobFunc = Callable[[H], Awaitable[Any]]
# Nodes start at about the same time; a little jitter spreads their ticks so the lock is not
# contended by every node on every tick.
JITTER_FRACTION = 0.1
# Shutdown waits this long for running jobs before cancelling them.
STOP_TIMEOUT_S = 10.0


@dataclass(frozen=True)
class Job(Generic[H]):
    name: str
    func: JobFunc[H]
    seconds: float


@dataclass(frozen=True)
class JobRun:
    name: str
    ran: bool  # False: another node held the lock, or the job is paused
    result: Any = None
    duration_s: float = 0.0
    paused: bool = False


async def run_locked(ctx: H, name: str, func: JobFunc[H], *, honour_pause: bool = False) -> JobRun:
    """Run `func(ctx)` if no other node is running job `name` right now (and, with
    `honour_pause`, if no admin paused it)."""
    started = time.monotonic()
    async with ctx.db.transaction() as conn:
        if not await try_xact_lock(conn, LockNamespace.JOB, name):
            return JobRun(name, ran=False)
        if honour_pause and await job_runs.is_paused(conn, name):
            return JobRun(name, ran=False, paused=True)
        result = await func(ctx)
    return JobRun(name, ran=True, result=result, duration_s=time.monotonic() - started)


class Scheduler(Generic[H]):
    """The node's job scheduler component (`ctx.scheduler`)."""

    def __init__(self, ctx: H) -> None:
        self.ctx = ctx
        self.jobs: dict[str, Job[H]] = {}
        self.last_runs: dict[str, JobRun] = {}
        self._scheduler: AsyncIOScheduler | None = None
        self._running: set[asyncio.Task[Any]] = set()

    def register(self, name: str, func: JobFunc[H], seconds: float) -> None:
        if name in self.jobs:
            raise ValueError(f"job {name!r} registered twice")
        if seconds <= 0:
            raise ValueError(f"job {name!r} needs a positive interval")
        self.jobs[name] = Job(name, func, seconds)
        if self._scheduler is not None:
            self._add(self.jobs[name])

    @property
    def running(self) -> bool:
        return self._scheduler is not None

    async def start(self) -> None:
        if not self.ctx.settings.scheduler_enabled:
            log.info("scheduler.disabled")
            return
        self._scheduler = AsyncIOScheduler(
            job_defaults={
                "coalesce": True,
                "max_instances": 1,
                "misfire_grace_time": max(1, int(self.ctx.settings.scheduler_misfire_grace_s)),
            }
        )
        for job in self.jobs.values():
            self._add(job)
        self._scheduler.start()
        log.info("scheduler.started", jobs=sorted(self.jobs))

    async def stop(self) -> None:
        if self._scheduler is not None:
            self._scheduler.shutdown(wait=False)
            self._scheduler = None
        if not self._running:
            return
        _done, pending = await asyncio.wait(set(self._running), timeout=STOP_TIMEOUT_S)
        for task in pending:
            task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await asyncio.gather(*pending, return_exceptions=True)

    def _add(self, job: Job[H]) -> None:
        assert self._scheduler is not None
        self._scheduler.add_job(
            self._tick,
            IntervalTrigger(seconds=job.seconds, jitter=job.seconds * JITTER_FRACTION),
            args=[job.name],
            id=job.name,
            name=job.name,
            replace_existing=True,
        )

    async def _tick(self, name: str) -> None:
        """One scheduled run: failures are logged, never raised into APScheduler."""
        task = asyncio.current_task()
        if task is not None:
            self._running.add(task)
        try:
            await self.run_now(name, honour_pause=True)
        except Unavailable as err:
            log.warning("job.unavailable", job=name, error=err.message)
        except Exception:
            log.exception("job.failed", job=name)
        finally:
            if task is not None:
                self._running.discard(task)

    async def run_now(self, name: str, *, honour_pause: bool = False) -> JobRun:
        """Run a job now under its lock; a run that took the lock leaves a history row
        (`job_runs`), written after the run's own transaction so a failure is recorded too.
        Scheduled ticks pass `honour_pause`; an explicit run (admin, CLI, tests) does not."""
        job = self.jobs[name]
        started_at = datetime.now(UTC)
        started = time.monotonic()
        try:
            run = await run_locked(self.ctx, job.name, job.func, honour_pause=honour_pause)
        except Exception as err:
            outcome = "unavailable" if isinstance(err, Unavailable) else "failed"
            JOB_RUNS.labels(name, outcome).inc()
            JOB_FAILURES.labels(name).inc()
            JOB_DURATION.labels(name).observe(time.monotonic() - started)
            await self._record(name, started_at, outcome, None, repr(err))
            raise
        self.last_runs[name] = run
        if run.ran:
            # Routine: every job runs every few seconds on some node; failures log at warning.
            log.debug("job.ran", job=name, duration_s=round(run.duration_s, 3))
            counts = run_counts(run.result)
            JOB_RUNS.labels(name, "ok").inc()
            JOB_DURATION.labels(name).observe(run.duration_s)
            for item, value in counts.items():
                if value > 0:
                    JOB_ITEMS.labels(name, item).inc(value)
            await self._record(name, started_at, "ok", counts, None)
        elif run.paused:
            JOB_RUNS.labels(name, "paused").inc()
            log.debug("job.skipped_paused", job=name)
        else:
            JOB_RUNS.labels(name, "locked").inc()
            log.debug("job.skipped_locked", job=name)
        return run

    async def _record(
        self,
        name: str,
        started_at: datetime,
        outcome: str,
        counts: dict[str, Any] | None,
        error: str | None,
    ) -> None:
        """Best effort: a history row must never turn a job's success into a failure."""
        try:
            await job_runs.record_run(
                self.ctx.db,
                name,
                self.ctx.settings.node_id,
                started_at,
                datetime.now(UTC),
                outcome,
                counts or {},
                error,
            )
        except Exception as err:
            log.warning("job.history_failed", job=name, error=repr(err))

    def next_run_at(self, name: str) -> datetime | None:
        """When APScheduler will run the job next on this node (None: scheduler off)."""
        if self._scheduler is None:
            return None
        job = self._scheduler.get_job(name)
        return None if job is None else job.next_run_time


def run_counts(result: Any) -> dict[str, Any]:
    """What a job returned, as the history's counts: a dict of numbers as is (so is an object's
    `counts()`), a number as `{"count": n}`, anything else as nothing."""
    counts = getattr(result, "counts", None)
    if callable(counts):
        result = counts()
    if isinstance(result, dict):
        return {str(k): v for k, v in result.items() if isinstance(v, int | float)}
    if isinstance(result, int | float) and not isinstance(result, bool):
        return {"count": result}
    return {}
