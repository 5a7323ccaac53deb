"""Wire types of the inbox (`/api/v1/notifications/…`) and notification preferences."""

from __future__ import annotations

from typing import Any

from marshmallow import Schema, ValidationError, fields, validate, validates_schema

from bus.schemas.notifications import NotificationEventSchema, NotificationSchema
from models.notifications import CHANNELS, NOTIFICATION_KINDS
from services.notifications import INBOX_VIEWS

# --- requests -----------------------------------------------------------------------------------


class InboxQuerySchema(Schema):
    view = fields.String(
        load_default="inbox",
        validate=validate.OneOf(INBOX_VIEWS),
        metadata={"description": "inbox (not archived, default), unread, or archived"},
    )
    cursor = fields.String(validate=validate.Length(min=1, max=200))
    limit = fields.Integer(load_default=20, validate=validate.Range(min=1, max=100))


class TargetSchema(Schema):
    """Exactly one of: a group (`group_key`) or all of the caller's notifications (`all: true`)."""

    group_key = fields.String(validate=validate.Length(min=1, max=200))
    all = fields.Boolean(validate=validate.Equal(True))

    @validates_schema
    def _exactly_one(self, data: dict[str, Any], **_: Any) -> None:
        if ("group_key" in data) == ("all" in data):
            raise ValidationError("give either group_key or all: true", field_name="_schema")


class PreferenceUpdateSchema(Schema):
    channel = fields.String(required=True, validate=validate.OneOf(CHANNELS))


# --- responses ----------------------------------------------------------------------------------


class InboxItemSchema(Schema):
    group_key = fields.String(required=True)
    count = fields.Integer(required=True, metadata={"description": "notifications in the group"})
    unread_count = fields.Integer(required=True)
    actor_ids = fields.List(
        fields.UUID(), required=True, metadata={"description": "up to 5 distinct actors"}
    )
    latest = fields.Nested(NotificationSchema, required=True)


class InboxPageSchema(Schema):
    items = fields.List(fields.Nested(InboxItemSchema), required=True)
    next_cursor = fields.String(allow_none=True, required=True)
    unread_count = fields.Integer(required=True)


class UnreadCountSchema(Schema):
    unread_count = fields.Integer(required=True)


class PreferenceSchema(Schema):
    kind = fields.String(required=True, validate=validate.OneOf(NOTIFICATION_KINDS))
    channel = fields.String(required=True, validate=validate.OneOf(CHANNELS))
    default_channel = fields.String(required=True, validate=validate.OneOf(CHANNELS))


class PreferenceListSchema(Schema):
    preferences = fields.List(fields.Nested(PreferenceSchema), required=True)


# --- `/ws/inbox` frames (live/inbox_feed.py builds them; tests/test_inbox_socket.py checks) ---


class InboxReadyFrameSchema(Schema):
    type = fields.String(required=True, validate=validate.Equal("ready"))
    unread_count = fields.Integer(required=True)
    seq = fields.Integer(
        required=True, metadata={"description": "the stream sequence the socket starts after"}
    )


class InboxEventFrameSchema(Schema):
    type = fields.String(required=True, validate=validate.Equal("event"))
    seq = fields.Integer(required=True, metadata={"description": "COLLAB_EVENTS stream sequence"})
    event = fields.Nested(NotificationEventSchema, required=True)


class InboxUnreadFrameSchema(Schema):
    """The true unread total, when it differs from what the last event said."""

    type = fields.String(required=True, validate=validate.Equal("unread"))
    unread_count = fields.Integer(required=True)


class InboxRefetchFrameSchema(Schema):
    type = fields.String(required=True, validate=validate.Equal("refetch"))
    reason = fields.String(
        required=True, validate=validate.OneOf(["too_far_behind", "ahead_of_stream"])
    )
    seq = fields.Integer(required=True)


class SocketErrorFrameSchema(Schema):
    type = fields.String(required=True, validate=validate.Equal("error"))
    code = fields.String(required=True)
    message = fields.String(required=True)


class PingFrameSchema(Schema):
    """In: `{"type": "ping"}`; out: `{"type": "pong"}`."""

    type = fields.String(required=True, validate=validate.OneOf(["ping", "pong"]))


INBOX_FRAMES: dict[str, type[Schema]] = {
    "InboxReadyFrame": InboxReadyFrameSchema,
    "InboxEventFrame": InboxEventFrameSchema,
    "InboxUnreadFrame": InboxUnreadFrameSchema,
    "InboxRefetchFrame": InboxRefetchFrameSchema,
    "SocketErrorFrame": SocketErrorFrameSchema,
    "PingFrame": PingFrameSchema,
}
