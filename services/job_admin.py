"""The admin view of background jobs: what is registered, when each runs next on this node, its
last runs from the history (`job_runs`, every node's), whether it is paused, running one now
under its lock, and pausing / resuming it.

A pause is a row in `job_states`, read by every node's scheduler under the job's lock before a
scheduled run, so one request pauses the job on the whole cluster (not just the node that took
the request) and the pause survives restarts. "Run now" still runs a paused job: an admin asking
for one run means it."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any, Protocol

from core.errors import NotFound
from models.db import Database
from models.repo import job_runs
from services.unit_of_work import TransactionDeps, unit_of_work
from services.user_admin import audit

LAST_RUNS = 5


class JobSpec(Protocol):
    @property
    def seconds(self) -> float: ...


class RunResult(Protocol):
    @property
    def ran(self) -> bool: ...


class JobTable(Protocol):
    """What the node's scheduler (`server/scheduler.py`) offers the admin view."""

    @property
    def jobs(self) -> Mapping[str, JobSpec]: ...

    def next_run_at(self, name: str) -> datetime | None: ...

    async def run_now(self, name: str) -> RunResult: ...


# Job names are short identifiers; a longer one is named back only by its start (a 5,000-character
# name was echoed whole).
MAX_NAME_SHOWN = 64


def _require_job(table: JobTable, name: str) -> None:
    if name not in table.jobs:
        shown = name if len(name) <= MAX_NAME_SHOWN else name[:MAX_NAME_SHOWN] + "…"
        raise NotFound(f"no such job: {shown}", code="job_not_found")


async def _view(
    db: Database, table: JobTable, name: str, pause: dict[str, Any] | None
) -> dict[str, Any]:
    return {
        "name": name,
        "interval_s": table.jobs[name].seconds,
        "next_run_at": table.next_run_at(name),
        "paused": pause is not None,
        "paused_at": None if pause is None else pause["paused_at"],
        "paused_by": None if pause is None else pause["paused_by"],
        "last_runs": await job_runs.recent_runs(db, name, LAST_RUNS),
    }


async def job_view(db: Database, table: JobTable, name: str) -> dict[str, Any]:
    _require_job(table, name)
    pauses = await job_runs.pause_states(db, [name])
    return await _view(db, table, name, pauses.get(name))


async def list_jobs(db: Database, table: JobTable) -> list[dict[str, Any]]:
    names = sorted(table.jobs)
    pauses = await job_runs.pause_states(db, names)
    return [await _view(db, table, name, pauses.get(name)) for name in names]


async def set_paused(
    deps: TransactionDeps, table: JobTable, name: str, paused: bool, actor_id: str | None
) -> dict[str, Any]:
    """Pause or resume a job on every node; audited (`admin.job_paused` / `admin.job_resumed`)
    only when it changed anything, so repeating the request is harmless."""
    _require_job(table, name)
    async with unit_of_work(deps) as uow:
        if await job_runs.set_paused(uow.conn, name, paused, actor_id):
            await audit(uow, "job_paused" if paused else "job_resumed", actor_id, {"job": name})
    return await job_view(deps.db, table, name)


async def run_job(
    deps: TransactionDeps, table: JobTable, name: str, actor_id: str | None
) -> dict[str, Any]:
    """Run now (same lock as a scheduled run: if another node holds it, `ran` is false); the
    request is audited whatever the run's outcome (its history row says that)."""
    _require_job(table, name)
    async with unit_of_work(deps) as uow:
        await audit(uow, "job_run", actor_id, {"job": name})
    run = await table.run_now(name)
    return {"ran": bool(run.ran), "job": await job_view(deps.db, table, name)}
