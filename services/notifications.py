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

import base64
import binascii
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
from bus.schemas.notifications import NotificationSchema
from core.errors import NotFound, ValidationFailed
from models.db import Executor
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
from services.notification_entities import InboxItem, InboxPage, Notification, Preference
from services.policy import VIEW_ACTION, Resource
from services.unit_of_work import TransactionDeps, UnitOfWork, unit_of_work

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
    "access_granted",
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
    # The preview (title, excerpt, ...): open JSON, kind-specific (`Notification.data`).
    data: Mapping[str, Any] = field(default_factory=dict)

    @property
    def group_key(self) -> str:
        if self.thread_id is not None:
            return f"thread:{self.thread_id}"
        about = self.document_id or self.card_id or self.board_id or self.workspace_id
        return group_key_of(self.kind, about)

    @property
    def resource(self) -> Resource:
        """What the recipient must be allowed to view to hear about it."""
        if self.document_id is not None:
            return Resource.document(str(self.document_id))
        if self.board_id is not None:
            return Resource.board(str(self.board_id))
        return Resource.workspace(str(self.workspace_id))


def group_key_of(kind: str, about: object) -> str:
    """The inbox group of a notification not in a thread: its kind and what it is about."""
    return f"{kind}:{about}"


async def settle_invitation(uow: UnitOfWork, user_id: str, workspace_id: str) -> None:
    """The invitee joined the workspace: its `workspace.invited` notification has done its job
    and is marked read (it stayed unread, counted in the badge, after the accept)."""
    target = repo.Target(group_key=group_key_of(WORKSPACE_INVITED, workspace_id))
    if await repo.set_state(uow.conn, user_id, "read", target):
        await emit_change(uow, user_id, _STATE_EVENTS[("read", True)], group_key=target.group_key)


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
    if channel == OFF or not await may_see(uow.conn, draft):
        return None
    record = await repo.insert(uow.conn, _new_row(draft, data, channel))
    created = Notification.from_row(record)
    await emit_change(uow, recipient, "notification.created", notification=to_wire(created))
    return UUID(str(created.id))


def _checked_data(draft: NotificationDraft) -> dict[str, Any]:
    """The draft's preview as the JSON it will be stored as: an open, kind-specific object
    (`Notification.data`), so a dict; only its kind, size and JSON-ness are checked."""
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


async def may_see(conn: Executor, draft: NotificationDraft) -> bool:
    """Whether the recipient may view what `draft` is about, as `conn` sees it (the notification
    mail asks again before mailing: access may have gone since)."""
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


_NOTIFICATION = NotificationSchema()


def to_wire(notification: Notification) -> dict[str, Any]:
    """An inbox row in its public JSON form (`bus/schemas/notifications.NotificationSchema`):
    the `notification` of a `notification.created` event."""
    wire: dict[str, Any] = _NOTIFICATION.dump(notification)
    return wire


async def emit_change(uow: UnitOfWork, user_id: str, event_type: str, **fields: Any) -> int:
    """Emit one event on the user's subject with their unread count as this transaction sees
    it; returns that count.

    No lock serialises one user's changes: `notify` runs inside other features' transactions,
    which may notify several users in any order, and waiting for one inbox while holding another
    could deadlock two of them. So two changes of one inbox committing at the same moment may
    each miss the other's row; the inbox socket re-reads the count after every event and sends
    the true one (live/inbox_feed.py), REST answers always count afresh."""
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
    return int(body["unread_count"])


# --- the inbox: reading and changing one's own rows ----------------------------------------------

INBOX_VIEWS = tuple(repo.VIEW_CONDITIONS)
# `state` → the event a change of it emits (`on` = set, else cleared).
_STATE_EVENTS = {
    ("read", True): "notification.read",
    ("archived", True): "notification.archived",
    ("archived", False): "notification.unarchived",
}


@dataclass(frozen=True)
class InboxQuery:
    view: str = "inbox"  # one of INBOX_VIEWS
    cursor: str | None = None
    limit: int = 20


def encode_cursor(latest_at: datetime, latest_id: str) -> str:
    raw = json.dumps([latest_at.isoformat(), latest_id], separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str) -> tuple[datetime, str]:
    """The (latest_at, latest_id) a page ended at; a 400 for anything this module did not make."""
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        at, latest_id = json.loads(raw)
        parsed = datetime.fromisoformat(at)
        if parsed.tzinfo is not None:
            return parsed, str(UUID(latest_id))
    except (ValueError, TypeError, binascii.Error):
        pass
    raise ValidationFailed("invalid cursor", fields={"cursor": ["invalid cursor"]})


async def list_inbox(db: Executor, user_id: str, query: InboxQuery) -> InboxPage:
    """A page of inbox items (one per group, newest first), the next page's cursor and the unread
    total. Only the caller's own rows exist for them."""
    before = decode_cursor(query.cursor) if query.cursor else None
    rows = await repo.inbox_groups(db, user_id, repo.GroupPage(query.view, before, query.limit + 1))
    page = rows[: query.limit]
    more = len(rows) > query.limit
    return InboxPage(
        items=tuple(InboxItem.from_row(row) for row in page),
        next_cursor=encode_cursor(page[-1]["latest_at"], str(page[-1]["id"])) if more else None,
        unread_count=await repo.unread_count(db, user_id),
    )


async def unread_count(db: Executor, user_id: str) -> int:
    return await repo.unread_count(db, user_id)


async def change_state(
    deps: TransactionDeps, user_id: str, state: str, target: repo.Target, on: bool = True
) -> int:
    """Mark the target's rows read / archived (or back from the archive) and tell the user's
    sockets; the unread total after it. A target with no row of the caller's is a 404 (another
    user's notification does not exist for them); a change that changes nothing emits nothing."""
    async with unit_of_work(deps) as uow:
        if target != repo.Target() and not await repo.target_exists(uow.conn, user_id, target):
            raise NotFound("no such notification")
        if not await repo.set_state(uow.conn, user_id, state, target, on):
            return await repo.unread_count(uow.conn, user_id)
        count = await emit_change(
            uow,
            user_id,
            _STATE_EVENTS[(state, on)],
            notification_id=target.notification_id,
            group_key=target.group_key,
        )
    return count


# --- preferences -------------------------------------------------------------------------------


async def list_preferences(db: Executor, user_id: str) -> list[Preference]:
    """Every kind with the caller's effective channel and the default it falls back to."""
    chosen = await repo.preferences(db, user_id)
    return [_preference(kind, chosen.get(kind)) for kind in NOTIFICATION_KINDS]


def _preference(kind: str, chosen: str | None) -> Preference:
    default = default_channel(kind)
    return Preference(kind, chosen or default, default)


async def set_preference(db: Executor, user_id: str, kind: str, channel: str) -> Preference:
    if kind not in NOTIFICATION_KINDS:
        raise ValidationFailed("unknown notification kind", fields={"kind": ["unknown kind"]})
    if channel not in CHANNELS:
        raise ValidationFailed("unknown channel", fields={"channel": ["unknown channel"]})
    await repo.set_preference(db, user_id, kind, channel)
    return _preference(kind, channel)


# --- emit sites shared by several features -----------------------------------------------------


async def access_granted(
    uow: UnitOfWork,
    actor_id: str,
    user_id: str,
    workspace_id: str,
    *,
    title: str,
    role: str,
    document_id: str | None = None,
    board_id: str | None = None,
) -> None:
    """`access.granted`: someone gave `user_id` a role on a document or a board."""
    await notify(
        uow,
        NotificationDraft(
            recipient_id=UUID(user_id),
            kind=ACCESS_GRANTED,
            actor_id=UUID(actor_id),
            workspace_id=UUID(workspace_id),
            document_id=None if document_id is None else UUID(document_id),
            board_id=None if board_id is None else UUID(board_id),
            data={"title": title, "role": role},
        ),
    )
