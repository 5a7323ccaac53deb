"""Wire types of the one-click unsubscribe link (`handlers/unsubscribe.py`)."""

from __future__ import annotations

from marshmallow import Schema, fields, validate

from models.notifications import CHANNELS


class UnsubscribeQuerySchema(Schema):
    # A signed token (`services/notification_mail.py`): a user id and up to every kind, ~400 chars.
    token = fields.String(required=True, validate=validate.Length(min=1, max=1024))


class UnsubscribeKindSchema(Schema):
    kind = fields.String(required=True)
    label = fields.String(required=True)
    channel = fields.String(required=True, metadata={"enum": list(CHANNELS)})


class UnsubscribeResultSchema(Schema):
    """The kinds the link is about, with the recipient's channel for each (after a POST:
    `in_app` for those that emailed)."""

    email = fields.Email(required=True)
    kinds = fields.List(fields.Nested(UnsubscribeKindSchema), required=True)
