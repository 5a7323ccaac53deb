"""Data access for the job history (`job_runs`)."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

import asyncpg

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


# --- shared per-job state (`job_states`) -----------------------------------------------------


async def is_paused(db: Database | asyncpg.Connection, job: str) -> bool:
    return bool(
        await db.fetchval("SELECT paused_at IS NOT NULL FROM job_states WHERE job = $1", job)
    )


async def pause_states(db: Database, jobs: list[str]) -> dict[str, dict[str, Any]]:
    """`{job: {"paused_at", "paused_by"}}` of the paused ones among `jobs`."""
    rows = await db.fetch(
        "SELECT job, paused_at, paused_by FROM job_states"
        " WHERE job = ANY($1::text[]) AND paused_at IS NOT NULL",
        jobs,
    )
    return {
        r["job"]: {
            "paused_at": r["paused_at"],
            "paused_by": None if r["paused_by"] is None else str(r["paused_by"]),
        }
        for r in rows
    }


async def set_paused(
    conn: Database | asyncpg.Connection, job: str, paused: bool, by: str | None
) -> bool:
    """Pause or resume; True if that changed anything (pausing a paused job keeps its first
    pause time and author)."""
    if paused:
        status = await conn.execute(
            "INSERT INTO job_states (job, paused_at, paused_by) VALUES ($1, now(), $2)"
            " ON CONFLICT (job) DO UPDATE SET paused_at = now(), paused_by = $2,"
            " updated_at = now() WHERE job_states.paused_at IS NULL",
            job,
            by,
        )
    else:
        status = await conn.execute(
            "UPDATE job_states SET paused_at = NULL, paused_by = NULL, updated_at = now()"
            " WHERE job = $1 AND paused_at IS NOT NULL",
            job,
        )
    return status.split()[-1] != "0"


async def get_cursor(db: Database | asyncpg.Connection, job: str) -> str | None:
    value = await db.fetchval("SELECT cursor FROM job_states WHERE job = $1", job)
    return None if value is None else str(value)


async def set_cursor(db: Database | asyncpg.Connection, job: str, cursor: str | None) -> None:
    await db.execute(
        "INSERT INTO job_states (job, cursor) VALUES ($1, $2)"
        " ON CONFLICT (job) DO UPDATE SET cursor = $2, updated_at = now()",
        job,
        cursor,
    )
