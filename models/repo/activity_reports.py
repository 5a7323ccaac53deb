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
) -> str | None:
    """The new report's id; None if the workspace already has this week's (another run)."""
    value = await conn.fetchval(
        "INSERT INTO activity_reports (workspace_id, week_start, week_end, counts,"
        " top_contributors) VALUES ($1, $2, $3, $4, $5)"
        " ON CONFLICT (workspace_id, week_start) DO NOTHING RETURNING id",
        workspace_id,
        week_start,
        week_end,
        counts,
        top_contributors,
    )
    return None if value is None else str(value)


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


# --- email (opt-in per Owner/Admin membership) ----------------------------------------------

MANAGER_ROLES = ["owner", "admin"]


async def set_email(conn: Executor, workspace_id: str, user_id: str, wanted: bool) -> None:
    await conn.execute(
        "UPDATE workspace_members SET activity_report_email = $3, updated_at = now()"
        " WHERE workspace_id = $1 AND user_id = $2",
        workspace_id,
        user_id,
        wanted,
    )


async def wants_email(db: Executor, workspace_id: str, user_id: str) -> bool:
    """Still an Owner/Admin who asked for the mail (checked again when the mail is built)."""
    return bool(
        await db.fetchval(
            "SELECT activity_report_email FROM workspace_members"
            " WHERE workspace_id = $1 AND user_id = $2 AND role = ANY($3::text[])",
            workspace_id,
            user_id,
            MANAGER_ROLES,
        )
    )


async def email_recipients(db: Executor, workspace_id: str) -> list[str]:
    rows = await db.fetch(
        "SELECT m.user_id FROM workspace_members m JOIN users u ON u.id = m.user_id"
        " WHERE m.workspace_id = $1 AND m.activity_report_email AND u.is_active"
        " AND m.role = ANY($2::text[]) ORDER BY m.user_id",
        workspace_id,
        MANAGER_ROLES,
    )
    return [str(r["user_id"]) for r in rows]


async def get_report(db: Executor, report_id: str) -> dict[str, Any] | None:
    row = await db.fetchrow(
        f"SELECT {REPORT_COLUMNS}, (SELECT name FROM workspaces w WHERE w.id = r.workspace_id)"
        " AS workspace_name FROM activity_reports r WHERE r.id = $1",
        report_id,
    )
    return None if row is None else {**dict(row), "workspace_id": str(row["workspace_id"])}
