"""Data access for the notification inbox (`notifications`) and preferences."""

from __future__ import annotations

from dataclasses import dataclass
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

