"""Data access for the notification inbox (`notifications`) and preferences."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

import asyncpg

from models.db import Executor

COLUMNS = (
    "id, recipient_id, kind, actor_id, workspace_id, document_id, board_id, card_id, thread_id,"
    " comment_id, data, group_key, channel, created_at, read_at, archived_at"
)


@dataclass(frozen=True)
class NewNotification:
    recipient_id: str
    kind: str
    actor_id: str | None
    workspace_id: str
    document_id: str | None
    board_id: str | None
    card_id: str | None
    thread_id: str | None
    comment_id: str | None
    data: dict[str, Any]
    group_key: str
    channel: str


async def insert(conn: asyncpg.Connection, row: NewNotification) -> asyncpg.Record:
    record = await conn.fetchrow(
        "INSERT INTO notifications (recipient_id, kind, actor_id, workspace_id, document_id,"
        " board_id, card_id, thread_id, comment_id, data, group_key, channel)"
        " VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10::jsonb, $11, $12)"
        f" RETURNING {COLUMNS}",
        row.recipient_id,
        row.kind,
        row.actor_id,
        row.workspace_id,
        row.document_id,
        row.board_id,
        row.card_id,
        row.thread_id,
        row.comment_id,
        row.data,
        row.group_key,
        row.channel,
    )
    assert record is not None  # INSERT … RETURNING always returns the row
    return record


async def unread_count(db: Executor, recipient_id: str) -> int:
    return int(
        await db.fetchval(
            "SELECT count(*) FROM notifications"
            " WHERE recipient_id = $1 AND read_at IS NULL AND archived_at IS NULL",
            recipient_id,
        )
    )


async def preference(db: Executor, user_id: str, kind: str) -> str | None:
    """The user's chosen channel for `kind`; None when they never chose (the default applies)."""
    value = await db.fetchval(
        "SELECT channel FROM notification_preferences WHERE user_id = $1 AND kind = $2",
        user_id,
        kind,
    )
    return None if value is None else str(value)


async def preferences(db: Executor, user_id: str) -> dict[str, str]:
    rows = await db.fetch(
        "SELECT kind, channel FROM notification_preferences WHERE user_id = $1", user_id
    )
    return {row["kind"]: row["channel"] for row in rows}


async def set_preference(db: Executor, user_id: str, kind: str, channel: str) -> None:
    await db.execute(
        "INSERT INTO notification_preferences (user_id, kind, channel) VALUES ($1, $2, $3)"
        " ON CONFLICT (user_id, kind) DO UPDATE SET channel = EXCLUDED.channel, updated_at = now()",
        user_id,
        kind,
        channel,
    )


# Which rows each inbox view groups: the inbox (not archived), unread only, or the archive.
VIEW_CONDITIONS = {
    "inbox": "archived_at IS NULL",
    "unread": "archived_at IS NULL AND read_at IS NULL",
    "archived": "archived_at IS NOT NULL",
}
# Per group: its size, how many are unread, up to this many distinct actors ("Ann and 3 others").
ACTORS_PER_GROUP = 5


@dataclass(frozen=True)
class GroupPage:
    view: str
    before: tuple[datetime, str] | None  # (latest_at, latest_id) of the last group already seen
    limit: int


async def inbox_groups(db: Executor, recipient_id: str, page: GroupPage) -> list[asyncpg.Record]:
    """One row per group of the view, newest latest item first: the latest row's columns plus
    `count`, `unread`, `actor_ids`, `latest_at`."""
    prefixed = ", ".join(f"n.{c.strip()}" for c in COLUMNS.split(","))
    return await db.fetch(
        f"""
        WITH grouped AS (
            SELECT group_key, count(*) AS count,
                   count(*) FILTER (WHERE read_at IS NULL) AS unread,
                   (array_agg(DISTINCT actor_id) FILTER (WHERE actor_id IS NOT NULL))
                       [1:{ACTORS_PER_GROUP}] AS actor_ids,
                   (array_agg(id ORDER BY created_at DESC, id DESC))[1] AS latest_id,
                   max(created_at) AS latest_at
            FROM notifications
            WHERE recipient_id = $1 AND {VIEW_CONDITIONS[page.view]}
            GROUP BY group_key
        )
        SELECT {prefixed}, g.count, g.unread, g.actor_ids, g.latest_at
        FROM grouped g JOIN notifications n ON n.id = g.latest_id
        WHERE $2::timestamptz IS NULL OR (g.latest_at, g.latest_id) < ($2, $3::uuid)
        ORDER BY g.latest_at DESC, g.latest_id DESC
        LIMIT $4
        """,
        recipient_id,
        page.before[0] if page.before else None,
        page.before[1] if page.before else None,
        page.limit,
    )


@dataclass(frozen=True)
class Target:
    """Which of a user's rows a change applies to: one, one group, or (both None) all."""

    notification_id: str | None = None
    group_key: str | None = None


async def target_exists(db: Executor, recipient_id: str, target: Target) -> bool:
    return bool(
        await db.fetchval(
            "SELECT EXISTS (SELECT 1 FROM notifications WHERE recipient_id = $1"
            " AND ($2::uuid IS NULL OR id = $2) AND ($3::text IS NULL OR group_key = $3))",
            recipient_id,
            target.notification_id,
            target.group_key,
        )
    )


# The state columns a user may set on their rows; read from here, never from input.
STATE_COLUMNS = {"read": "read_at", "archived": "archived_at"}


async def set_state(
    conn: asyncpg.Connection, recipient_id: str, state: str, target: Target, on: bool = True
) -> int:
    """Set (or with `on=False` clear) a state of the target's rows; how many rows changed."""
    column = STATE_COLUMNS[state]
    status = await conn.execute(
        f"UPDATE notifications SET {column} = {'now()' if on else 'NULL'}"
        f" WHERE recipient_id = $1 AND {column} IS {'NULL' if on else 'NOT NULL'}"
        " AND ($2::uuid IS NULL OR id = $2) AND ($3::text IS NULL OR group_key = $3)",
        recipient_id,
        target.notification_id,
        target.group_key,
    )
    return int(status.split()[-1])
