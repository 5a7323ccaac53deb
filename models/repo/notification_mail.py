"""Data access for the email side of notifications (`notifications.emailed_at` / `email_state`).

A notification whose `channel` (the recipient's preference when it was written) is an email
channel starts with `email_state` NULL: pending. The notification mail job
(`services/notification_mail.py`) sets it once: `mailed` (with `emailed_at`; the message is in
the outbox from then on, its delivery recorded there), `seen` (read or archived before a mail
went out), `unsubscribed` (the preference is no longer an email channel), `no_access` (the
recipient may no longer see what it is about).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import asyncpg

from models.db import Executor

MAILED = "mailed"
SEEN = "seen"
UNSUBSCRIBED = "unsubscribed"
NO_ACCESS = "no_access"


async def pending(
    db: Executor, email_channels: list[str], limit: int, recipient_id: str | None = None
) -> list[dict[str, Any]]:
    """The oldest pending notifications with what a mail about them says: the recipient, the
    actor's name and the titles of what they are about; plus the recipient's current choice for
    the kind (`current_channel`, NULL: the kind's default). Held ones (`email_due_at` ahead) are
    left out — except when asking for one recipient's: a digest takes every pending item."""
    rows = await db.fetch(
        """
        SELECT n.id, n.recipient_id, n.kind, n.actor_id, n.workspace_id, n.document_id,
               n.board_id, n.card_id, n.thread_id, n.comment_id, n.data, n.group_key, n.channel,
               n.created_at, n.read_at, n.archived_at,
               p.channel AS current_channel,
               u.email AS recipient_email, u.display_name AS recipient_name,
               u.is_active AS recipient_active,
               a.display_name AS actor_name,
               w.name AS workspace_name, d.title AS document_title, b.name AS board_name,
               c.title AS card_title
        FROM notifications n
        JOIN users u ON u.id = n.recipient_id
        JOIN workspaces w ON w.id = n.workspace_id
        LEFT JOIN users a ON a.id = n.actor_id
        LEFT JOIN documents d ON d.id = n.document_id
        LEFT JOIN boards b ON b.id = n.board_id
        LEFT JOIN cards c ON c.id = n.card_id
        LEFT JOIN notification_preferences p ON p.user_id = n.recipient_id AND p.kind = n.kind
        WHERE n.email_state IS NULL AND n.channel = ANY($1::text[])
          AND ($3::uuid IS NULL AND (n.email_due_at IS NULL OR n.email_due_at <= now())
               OR n.recipient_id = $3::uuid)
        ORDER BY n.created_at, n.id
        LIMIT $2
        """,
        email_channels,
        limit,
        recipient_id,
    )
    return [dict(row) for row in rows]


async def last_mailed(
    db: Executor, recipient_id: str, document_id: str | None, group_key: str
) -> datetime | None:
    """When the recipient was last mailed about this document (or, for what is about no
    document, this group): the per-document suppression window starts there."""
    if document_id is not None:
        value = await db.fetchval(
            "SELECT max(emailed_at) FROM notifications WHERE recipient_id = $1"
            " AND document_id = $2 AND email_state = $3",
            recipient_id,
            document_id,
            MAILED,
        )
    else:
        value = await db.fetchval(
            "SELECT max(emailed_at) FROM notifications WHERE recipient_id = $1"
            " AND group_key = $2 AND email_state = $3",
            recipient_id,
            group_key,
            MAILED,
        )
    return value if isinstance(value, datetime) else None


async def hold(db: Executor, ids: list[str], until: datetime) -> None:
    """Not planned again before `until` (the suppression window or the digest period ends)."""
    await db.execute(
        "UPDATE notifications SET email_due_at = $2 WHERE id = ANY($1::uuid[])"
        " AND email_state IS NULL",
        ids,
        until,
    )


async def settle(conn: asyncpg.Connection | Executor, ids: list[str], state: str) -> list[str]:
    """Set the state of still-pending rows (`emailed_at` too when mailed); the ids changed."""
    rows = await conn.fetch(
        "UPDATE notifications SET email_state = $2,"
        " emailed_at = CASE WHEN $2 = 'mailed' THEN now() ELSE emailed_at END"
        " WHERE id = ANY($1::uuid[]) AND email_state IS NULL RETURNING id",
        ids,
        state,
    )
    return [str(row["id"]) for row in rows]
