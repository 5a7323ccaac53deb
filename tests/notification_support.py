"""Helpers shared by the notification tests: drafts and `notify` in a real unit of work."""

from __future__ import annotations

from typing import Any
from uuid import UUID

from services import notifications
from services.notifications import NotificationDraft
from services.unit_of_work import unit_of_work

INBOX = "/api/v1/notifications/"


def draft(recipient: Any, actor: Any, workspace_id: str, **extra: Any) -> NotificationDraft:
    return NotificationDraft(
        recipient_id=UUID(recipient.id),
        kind=extra.pop("kind", notifications.DOCUMENT_MENTION),
        actor_id=None if actor is None else UUID(actor.id),
        workspace_id=UUID(workspace_id),
        **extra,
    )


async def notify(ctx: Any, d: NotificationDraft) -> UUID | None:
    async with unit_of_work(ctx) as uow:
        return await notifications.notify(uow, d)


async def rows_of(ctx: Any, user_id: str) -> list:
    return await ctx.db.fetch(
        "SELECT * FROM notifications WHERE recipient_id = $1 ORDER BY created_at", user_id
    )
