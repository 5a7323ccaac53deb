"""What the notification services return: an inbox row, an inbox item (a group with its latest
row), a page of them, a kind's channel preference.

Built from repository rows (`from_row`, `core/entity.py`) and serialised where they leave the
domain by `bus/schemas/notifications.NotificationSchema` (events and REST) and the inbox schemas
of `handlers/schemas/notifications.py`, which read them by attribute as they read dicts by key.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from uuid import UUID

from core.entity import FromRow


@dataclass(frozen=True)
class Notification(FromRow):
    """One inbox row: who did what (`kind`), about what (ids), and its read/archived state."""

    id: UUID
    kind: str
    # None for system actions (an export finished, a job).
    actor_id: UUID | None
    workspace_id: UUID
    document_id: UUID | None
    board_id: UUID | None
    card_id: UUID | None
    thread_id: UUID | None
    comment_id: UUID | None
    # The kind's preview (title, excerpt, role, ...): open JSON by design, each feature puts what
    # its client shows without another request; checked for size and JSON-ness by `notify`.
    data: Mapping[str, Any]
    group_key: str
    created_at: datetime
    read_at: datetime | None
    archived_at: datetime | None


@dataclass(frozen=True)
class InboxItem:
    """A group of notifications (a thread, or a kind about one thing) shown as one item."""

    group_key: str
    count: int
    unread_count: int
    actor_ids: tuple[str, ...]  # up to 5 distinct actors
    latest: Notification

    @classmethod
    def from_row(cls, row: Mapping[str, Any]) -> InboxItem:
        """From `repo.inbox_groups`' row: the latest notification's columns and the group's."""
        return cls(
            group_key=row["group_key"],
            count=row["count"],
            unread_count=row["unread"],
            actor_ids=tuple(str(a) for a in row["actor_ids"] or []),
            latest=Notification.from_row(row),
        )


@dataclass(frozen=True)
class InboxPage:
    items: tuple[InboxItem, ...]
    # Where the next page starts; None: this was the last.
    next_cursor: str | None
    unread_count: int


@dataclass(frozen=True)
class Preference:
    """A kind's effective channel and the default it falls back to without a choice."""

    kind: str
    channel: str
    default_channel: str
