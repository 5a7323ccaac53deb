"""The admin view of background jobs: what is registered, when each runs next on this node, its
last runs from the history (`job_runs`, every node's), and running one now under its lock."""

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


async def job_view(db: Database, table: JobTable, name: str) -> dict[str, Any]:
    if name not in table.jobs:
        raise NotFound(f"no such job: {name}", code="job_not_found")
    return {
        "name": name,
        "interval_s": table.jobs[name].seconds,
        "next_run_at": table.next_run_at(name),
        "last_runs": await job_runs.recent_runs(db, name, LAST_RUNS),
    }


async def list_jobs(db: Database, table: JobTable) -> list[dict[str, Any]]:
    return [await job_view(db, table, name) for name in sorted(table.jobs)]


async def run_job(
    deps: TransactionDeps, table: JobTable, name: str, actor_id: str | None
) -> dict[str, Any]:
    """Run now (same lock as a scheduled run: if another node holds it, `ran` is false); the
    request is audited whatever the run's outcome (its history row says that)."""
    if name not in table.jobs:
        raise NotFound(f"no such job: {name}", code="job_not_found")
    async with unit_of_work(deps) as uow:
        await audit(uow, "job_run", actor_id, {"job": name})
    run = await table.run_now(name)
    return {"ran": bool(run.ran), "job": await job_view(deps.db, table, name)}
