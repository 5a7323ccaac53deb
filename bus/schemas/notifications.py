"""Notification events on `collab.user.<user_id>.notification` (stream COLLAB_EVENTS).

One subject per recipient carries everything their inbox needs live, so an inbox socket (or an
external tool) subscribes to one subject and can resume from a stream sequence:

* `notification.created` — a new inbox row (`notification`, as the inbox REST API returns it);
* `notification.read` / `notification.archived` / `notification.unarchived` — rows were marked
  read, archived, or brought back from the archive: one row (`notification_id`), one group
  (`group_key`) or, with both null, all of them.

Every event carries `unread_count`, the recipient's unread total as the transaction that made
the change saw it: two changes of one inbox committed at the same moment may each miss the
other's (the inbox socket re-reads the count after events; REST counts afresh). Published with
`Nats-Msg-Id` = `id`: a consumer deduplicates on it.
"""

from __future__ import annotations

from typing import Any

from marshmallow import Schema, ValidationError, fields, validate, validates_schema

from models.notifications import NOTIFICATION_KINDS

EVENT_TYPES = (
    "notification.created",
    "notification.read",
    "notification.archived",
    "notification.unarchived",
)


class NotificationSchema(Schema):
    """One inbox row, the same shape on the subject and in the REST API."""

    id = fields.UUID(required=True)
    kind = fields.String(required=True, validate=validate.OneOf(NOTIFICATION_KINDS))
    # None for system actions (an export finished, a job).
    actor_id = fields.UUID(required=True, allow_none=True)
    workspace_id = fields.UUID(required=True)
    document_id = fields.UUID(required=True, allow_none=True)
    board_id = fields.UUID(required=True, allow_none=True)
    card_id = fields.UUID(required=True, allow_none=True)
    thread_id = fields.UUID(required=True, allow_none=True)
    comment_id = fields.UUID(required=True, allow_none=True)
    # What a client shows without another request: title, excerpt, ... (kind-specific).
    data = fields.Dict(keys=fields.String(), values=fields.Raw(), required=True)
    group_key = fields.String(required=True)
    created_at = fields.DateTime(required=True)
    read_at = fields.DateTime(required=True, allow_none=True)
    archived_at = fields.DateTime(required=True, allow_none=True)


class NotificationEventSchema(Schema):
    type = fields.String(required=True, validate=validate.OneOf(EVENT_TYPES))
    id = fields.UUID(required=True)
    user_id = fields.UUID(required=True)
    at = fields.DateTime(required=True)
    unread_count = fields.Integer(required=True, validate=validate.Range(min=0))
    notification = fields.Nested(NotificationSchema, allow_none=True, load_default=None)
    notification_id = fields.UUID(allow_none=True, load_default=None)
    group_key = fields.String(allow_none=True, load_default=None)

    @validates_schema
    def _fields_match_type(self, event: dict[str, Any], **_: Any) -> None:
        created = event.get("type") == "notification.created"
        if created and event.get("notification") is None:
            raise ValidationError("required for notification.created", field_name="notification")
        if not created and event.get("notification") is not None:
            raise ValidationError("only for notification.created", field_name="notification")
