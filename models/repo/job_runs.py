"""Data access for the job history (`job_runs`)."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from models.db import Database

RUN_COLUMNS = "id, job, node_id, started_at, finished_at, outcome, counts, error"


async def record_run(
    db: Database,
    job: str,
    node_id: str,
    started_at: datetime,
    finished_at: datetime,
    outcome: str,
    counts: dict[str, Any],
    error: str | None,
) -> None:
    await db.execute(
        "INSERT INTO job_runs (job, node_id, started_at, finished_at, outcome, counts, error)"
        " VALUES ($1, $2, $3, $4, $5, $6::jsonb, $7)",
        job,
        node_id,
        started_at,
        finished_at,
        outcome,
        json.dumps(counts),
        error,
    )


async def recent_runs(db: Database, job: str, limit: int) -> list[dict[str, Any]]:
    rows = await db.fetch(
        f"SELECT {RUN_COLUMNS} FROM job_runs WHERE job = $1 ORDER BY started_at DESC LIMIT $2",
        job,
        limit,
    )
    return [{**dict(r), "id": str(r["id"]), "counts": json.loads(r["counts"])} for r in rows]
