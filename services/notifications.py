"""Notifications: what a user is told about, written to their inbox in the transaction of the
change that caused it and published on `collab.user.<id>.notification` after the commit.

Other features call one function, inside their own unit of work:

    async with unit_of_work(ctx) as uow:
        ...  # the change itself
        await notifications.notify(uow, NotificationDraft(recipient_id=..., kind=CARD_ASSIGNED,
                                                          actor_id=actor, workspace_id=ws, ...))

`notify` decides whether the recipient hears about it at all:
* never about their own actions (actor == recipient);
* never when their preference for the kind is `off`;
* never about something they may not see *as of this transaction* (the policy's facts read on the
  change's own connection, so a grant made in the same transaction counts and a removal from the
  workspace stops notifications at once): a draft about a document needs `document:view`, about a
  board or a card (which carries its `board_id`) `board:view`, otherwise `workspace:view`.
  `workspace.invited` is the exception: its recipient is not a member yet.

Preferences (`CHANNELS`): every channel but `off` puts the notification in the inbox; the email
channels ask the mailer for an email now or in an hourly/daily digest. With no row of their own
a user gets `DEFAULT_CHANNELS` (mentions: inbox + email at once — someone asked for them by name;
everything else: inbox only, since e.g. an invitation of an existing user already sends its own
invitation email and replies can be many).

Grouping: rows with the same `group_key` are one inbox item with a count — every notification of
a thread (four replies → one item), otherwise one per (kind, the document / card / board /
workspace it is about).
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from uuid import UUID

import asyncpg

from bus.events import EventSchemaError
from bus.outbox import notification_event
from models.locks import LockNamespace, xact_lock
from models.notifications import (
    ACCESS_GRANTED,
    CARD_ASSIGNED,
    CHANNELS,
    COMMENT_MENTION,
    DOCUMENT_MENTION,
    EMAIL_CHANNELS,
    EMAIL_IMMEDIATE,
    EXPORT_READY,
    IN_APP,
    NOTIFICATION_KINDS,
    OFF,
    THREAD_REPLY,
    THREAD_RESOLVED,
    WORKSPACE_INVITED,
)
from models.repo import notifications as repo
from services import policy
from services.policy import VIEW_ACTION, Resource
from services.unit_of_work import UnitOfWork

__all__ = [
    "ACCESS_GRANTED",
    "CARD_ASSIGNED",
    "CHANNELS",
    "COMMENT_MENTION",
    "DEFAULT_CHANNELS",
    "DOCUMENT_MENTION",
    "EMAIL_CHANNELS",
    "EXPORT_READY",
    "NOTIFICATION_KINDS",
    "THREAD_REPLY",
    "THREAD_RESOLVED",
    "WORKSPACE_INVITED",
    "NotificationDraft",
    "default_channel",
    "effective_channel",
    "notify",
]

DEFAULT_CHANNELS: Mapping[str, str] = {
    COMMENT_MENTION: EMAIL_IMMEDIATE,
    DOCUMENT_MENTION: EMAIL_IMMEDIATE,
}
# `data` is a preview (title, excerpt), not a copy of the content: a few KiB keeps every row and
# event small however long the comment was.
MAX_DATA_BYTES = 4096


@dataclass(frozen=True)
class NotificationDraft:
    """What a feature tells `notify`: who, what kind, about what (ids), and a preview (`data`)."""

    recipient_id: UUID
    kind: str  # one of NOTIFICATION_KINDS
    actor_id: UUID | None
    workspace_id: UUID
    document_id: UUID | None = None
    board_id: UUID | None = None
    card_id: UUID | None = None
    thread_id: UUID | None = None
    comment_id: UUID | None = None
    data: Mapping[str, Any] = field(default_factory=dict)  # title, excerpt, ...

    @property
    def group_key(self) -> str:
        if self.thread_id is not None:
            return f"thread:{self.thread_id}"
        about = self.document_id or self.card_id or self.board_id or self.workspace_id
        return f"{self.kind}:{about}"

    @property
    def resource(self) -> Resource:
        """What the recipient must be allowed to view to hear about it."""
        if self.document_id is not None:
            return Resource.document(str(self.document_id))
        if self.board_id is not None:
            return Resource.board(str(self.board_id))
        return Resource.workspace(str(self.workspace_id))


def default_channel(kind: str) -> str:
    return DEFAULT_CHANNELS.get(kind, IN_APP)


async def effective_channel(conn: asyncpg.Connection, user_id: str, kind: str) -> str:
    return await repo.preference(conn, user_id, kind) or default_channel(kind)


async def notify(uow: UnitOfWork, draft: NotificationDraft) -> UUID | None:
    """Write the notification in `uow`'s transaction and emit its event (published after the
    commit); the new row's id, or None when the recipient is not to hear about it (see the module
    docstring). An unknown kind or an oversized / non-JSON `data` is a caller bug: EventSchemaError.
    """
    data = _checked_data(draft)
    recipient = str(draft.recipient_id)
    if draft.actor_id is not None and str(draft.actor_id) == recipient:
        return None
    channel = await effective_channel(uow.conn, recipient, draft.kind)
    if channel == OFF or not await _may_see(uow.conn, draft):
        return None
    await xact_lock(uow.conn, LockNamespace.INBOX, recipient)
    record = await repo.insert(uow.conn, _new_row(draft, data, channel))
    await emit_change(uow, recipient, "notification.created", notification=to_wire(record))
    return UUID(str(record["id"]))


def _checked_data(draft: NotificationDraft) -> dict[str, Any]:
    if draft.kind not in NOTIFICATION_KINDS:
        raise EventSchemaError(f"unknown notification kind {draft.kind!r}")
    try:
        encoded = json.dumps(dict(draft.data), default=_json_default)
    except (TypeError, ValueError) as err:
        raise EventSchemaError(f"{draft.kind} notification data is not JSON: {err}") from err
    if len(encoded.encode()) > MAX_DATA_BYTES:
        raise EventSchemaError(f"{draft.kind} notification data over {MAX_DATA_BYTES} bytes")
    data: dict[str, Any] = json.loads(encoded)
    return data


def _json_default(value: object) -> str:
    if isinstance(value, UUID):
        return str(value)
    if isinstance(value, datetime):
        return value.isoformat()
    raise TypeError(f"{type(value).__name__} is not JSON")


async def _may_see(conn: asyncpg.Connection, draft: NotificationDraft) -> bool:
    if draft.kind == WORKSPACE_INVITED:
        return True
    resource = draft.resource
    facts = await policy.load_facts(conn, str(draft.recipient_id), resource)
    return facts is not None and policy.decide(facts).allows(VIEW_ACTION[resource.kind])


def _optional(value: UUID | None) -> str | None:
    return None if value is None else str(value)


def _new_row(draft: NotificationDraft, data: dict[str, Any], channel: str) -> repo.NewNotification:
    return repo.NewNotification(
        recipient_id=str(draft.recipient_id),
        kind=draft.kind,
        actor_id=_optional(draft.actor_id),
        workspace_id=str(draft.workspace_id),
        document_id=_optional(draft.document_id),
        board_id=_optional(draft.board_id),
        card_id=_optional(draft.card_id),
        thread_id=_optional(draft.thread_id),
        comment_id=_optional(draft.comment_id),
        data=data,
        group_key=draft.group_key,
        channel=channel,
    )


_ID_COLUMNS = (
    "id",
    "actor_id",
    "workspace_id",
    "document_id",
    "board_id",
    "card_id",
    "thread_id",
    "comment_id",
)
_TIME_COLUMNS = ("created_at", "read_at", "archived_at")


def to_wire(record: Mapping[str, Any]) -> dict[str, Any]:
    """An inbox row in its public JSON form (`bus/schemas/notifications.NotificationSchema`)."""
    wire: dict[str, Any] = {"kind": record["kind"], "group_key": record["group_key"]}
    wire["data"] = dict(record["data"])
    for column in _ID_COLUMNS:
        wire[column] = None if record[column] is None else str(record[column])
    for column in _TIME_COLUMNS:
        wire[column] = None if record[column] is None else record[column].isoformat()
    return wire


async def emit_change(uow: UnitOfWork, user_id: str, event_type: str, **fields: Any) -> None:
    """Emit one event on the user's subject with their unread count after this change (the
    caller holds the user's INBOX lock, so concurrent changes cannot both count the old total)."""
    body = {
        "type": event_type,
        "id": str(uuid.uuid4()),
        "user_id": user_id,
        "at": datetime.now(UTC).isoformat(),
        "unread_count": await repo.unread_count(uow.conn, user_id),
        "notification": None,
        "notification_id": None,
        "group_key": None,
        **fields,
    }
    await uow.emit(notification_event(body))
