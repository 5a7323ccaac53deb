"""Wire types of the document presence endpoint."""

from __future__ import annotations

from marshmallow import Schema, fields


class OnlineUserSchema(Schema):
    user_id = fields.String(required=True)
    display_name = fields.String(required=True)
    since = fields.Float(
        required=True, metadata={"description": "epoch seconds of the oldest connection"}
    )
    connections = fields.Integer(required=True)


class DocumentPresenceSchema(Schema):
    document_id = fields.String(required=True)
    users = fields.List(fields.Nested(OnlineUserSchema), required=True)
