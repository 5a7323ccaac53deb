"""Data access for weekly activity reports: the week's activity events (the `activity_event`
rows of the outbox, where every activity event is staged in its change's transaction and kept),
and the reports themselves."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import asyncpg

from models.db import Database, Executor

REPORT_COLUMNS = "id, workspace_id, week_start, week_end, counts, top_contributors, created_at"


async def workspaces_without_report(
    db: Executor, week_start: datetime, week_end: datetime, limit: int
) -> list[str]:
    """Live workspaces that existed before the week ended and have no report for it yet."""
    rows = await db.fetch(
        "SELECT w.id FROM workspaces w WHERE w.deleted_at IS NULL AND w.created_at < $2"
        " AND NOT EXISTS (SELECT 1 FROM activity_reports r"
        "  WHERE r.workspace_id = w.id AND r.week_start = $1)"
        " ORDER BY w.id LIMIT $3",
        week_start,
        week_end,
        limit,
    )
    return [str(r["id"]) for r in rows]


async def event_counts(
    db: Executor, workspace_ids: list[str], start: datetime, end: datetime
) -> list[asyncpg.Record]:
    """(workspace_id, type, actor_id, n) over the week's activity events of those workspaces."""
    return await db.fetch(
        "SELECT payload->'event'->>'workspace_id' AS workspace_id,"
        " payload->'event'->>'type' AS type, payload->'event'->>'actor_id' AS actor_id,"
        " count(*) AS n FROM outbox"
        " WHERE kind = 'activity_event' AND created_at >= $2 AND created_at < $3"
        " AND payload->'event'->>'workspace_id' = ANY($1::text[])"
        " GROUP BY 1, 2, 3",
        workspace_ids,
        start,
        end,
    )


async def insert_report(
    conn: Executor,
    workspace_id: str,
    week_start: datetime,
    week_end: datetime,
    counts: dict[str, int],
    top_contributors: list[dict[str, Any]],
) -> bool:
    """False if the workspace already has this week's report (a run on another node)."""
    status = await conn.execute(
        "INSERT INTO activity_reports (workspace_id, week_start, week_end, counts,"
        " top_contributors) VALUES ($1, $2, $3, $4, $5)"
        " ON CONFLICT (workspace_id, week_start) DO NOTHING",
        workspace_id,
        week_start,
        week_end,
        counts,
        top_contributors,
    )
    return status.split()[-1] != "0"


async def list_reports(
    db: Database, workspace_id: str, limit: int, offset: int
) -> list[dict[str, Any]]:
    rows = await db.fetch(
        f"SELECT {REPORT_COLUMNS} FROM activity_reports WHERE workspace_id = $1"
        " ORDER BY week_start DESC LIMIT $2 OFFSET $3",
        workspace_id,
        limit,
        offset,
    )
    return [
        {
            **dict(r),
            "id": str(r["id"]),
            "workspace_id": str(r["workspace_id"]),
        }
        for r in rows
    ]
