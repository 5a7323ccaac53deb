"""The inbox: one `notifications` row per thing a user is told about, and per-kind preferences.

A row names what it is about with nullable references (document, board, card; thread and comment
are plain uuids because the comment tables belong to the comments feature), so deleting a
document or a card deletes its notifications, and `group_key` folds related rows into one inbox
item (every reply of a thread, every mention in one document). `channel` records the recipient's
effective preference when the row was written; `emailed_at` / `email_state` belong to the mailer
(issue 11 email), nullable and untouched by the inbox.

The vocabularies live here, the lowest layer that needs them: the CHECK on `channel`, the event
schema (`bus/schemas/notifications.py`) and the service (`services/notifications.py`) share them.
"""

from __future__ import annotations

import peewee
from playhouse.postgres_ext import BinaryJSONField

from models.base import BaseModel, timestamptz
from models.board_items import Card
from models.boards import Board
from models.documents import Document
from models.users import User
from models.workspaces import Workspace, role_check

COMMENT_MENTION = "comment.mention"
DOCUMENT_MENTION = "document.mention"
# To the author of a body mention whose user may not view the document (services/body_mentions.py).
DOCUMENT_MENTION_NO_ACCESS = "document.mention_no_access"
THREAD_REPLY = "thread.reply"
THREAD_RESOLVED = "thread.resolved"
CARD_ASSIGNED = "card.assigned"
WORKSPACE_INVITED = "workspace.invited"
ACCESS_GRANTED = "access.granted"
EXPORT_READY = "export.ready"
NOTIFICATION_KINDS: tuple[str, ...] = (
    COMMENT_MENTION,
    DOCUMENT_MENTION,
    DOCUMENT_MENTION_NO_ACCESS,
    THREAD_REPLY,
    THREAD_RESOLVED,
    CARD_ASSIGNED,
    WORKSPACE_INVITED,
    ACCESS_GRANTED,
    EXPORT_READY,
)

# Every channel but `off` puts the notification in the in-app inbox; the email channels say what
# mail goes out in addition.
IN_APP = "in_app"
EMAIL_IMMEDIATE = "email_immediate"
EMAIL_DIGEST_HOURLY = "email_digest_hourly"
EMAIL_DIGEST_DAILY = "email_digest_daily"
OFF = "off"
CHANNELS: tuple[str, ...] = (IN_APP, EMAIL_IMMEDIATE, EMAIL_DIGEST_HOURLY, EMAIL_DIGEST_DAILY, OFF)
EMAIL_CHANNELS: frozenset[str] = frozenset(
    {EMAIL_IMMEDIATE, EMAIL_DIGEST_HOURLY, EMAIL_DIGEST_DAILY}
)


class Notification(BaseModel):
    recipient = peewee.ForeignKeyField(User, on_delete="CASCADE", backref="notifications")
    kind = peewee.TextField()
    actor = peewee.ForeignKeyField(
        User, null=True, on_delete="SET NULL", index=True, backref="notifications_caused"
    )
    workspace = peewee.ForeignKeyField(Workspace, on_delete="CASCADE", index=True)
    document = peewee.ForeignKeyField(Document, null=True, on_delete="CASCADE", index=True)
    board = peewee.ForeignKeyField(Board, null=True, on_delete="CASCADE", index=True)
    card = peewee.ForeignKeyField(Card, null=True, on_delete="CASCADE", index=True)
    thread_id = peewee.UUIDField(null=True, index=True)
    comment_id = peewee.UUIDField(null=True)
    data = BinaryJSONField(default=dict)
    group_key = peewee.TextField()
    channel = peewee.TextField(constraints=[role_check("channel", CHANNELS)])
    read_at = timestamptz(null=True)
    archived_at = timestamptz(null=True)
    emailed_at = timestamptz(null=True)
    email_state = peewee.TextField(null=True)
    # A held notification mail is not planned again before this (migration 0024).
    email_due_at = timestamptz(null=True)

    class Meta:
        table_name = "notifications"
        indexes = ((("recipient", "group_key", "created_at"), False),)


class NotificationPreference(BaseModel):
    """A user's channel for one kind; no row means the kind's default (`services/notifications`)."""

    user = peewee.ForeignKeyField(User, on_delete="CASCADE", backref="notification_preferences")
    kind = peewee.TextField()
    channel = peewee.TextField(constraints=[role_check("channel", CHANNELS)])
    updated_at = timestamptz(default_now=True)

    class Meta:
        table_name = "notification_preferences"
        indexes = ((("user", "kind"), True),)


NOTIFICATION_TABLES = [Notification, NotificationPreference]
# The unread count and the newest-first listing read only live rows of one recipient.
NOTIFICATION_INDEXES_DDL = [
    "CREATE INDEX IF NOT EXISTS notifications_unread ON notifications (recipient_id)"
    " WHERE read_at IS NULL AND archived_at IS NULL",
    "CREATE INDEX IF NOT EXISTS notifications_recipient_recent"
    " ON notifications (recipient_id, created_at DESC, id DESC)",
]
