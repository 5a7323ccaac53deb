"""The board entities: a board, list, card, label, checklist item or member as the REST API returns it.

They are the `entity` of board events (`board_events.py`) and the objects of REST responses
(`handlers/schemas/boards.py`), defined here, next to the event schemas, because services and
events use them too and neither may import the HTTP layer.
"""

from __future__ import annotations

from marshmallow import Schema, fields, validate

from models.boards import RESOURCE_ROLES

ROLE = validate.OneOf(RESOURCE_ROLES)


class BoardSchema(Schema):
    id = fields.UUID(required=True)
    workspace_id = fields.UUID(required=True)
    name = fields.String(required=True)
    description = fields.String(required=True)
    color = fields.String(required=True, allow_none=True)
    background = fields.String(required=True, allow_none=True)
    is_private = fields.Boolean(required=True)
    archived = fields.Boolean(required=True)
    archived_at = fields.DateTime(required=True, allow_none=True)
    deleted = fields.Boolean(required=True)
    created_by = fields.UUID(required=True, allow_none=True)
    created_at = fields.DateTime(required=True)
    updated_at = fields.DateTime(required=True)
    version = fields.Integer(required=True)
    # The board's event sequence when this was read: connect to the board socket with
    # `?since=<event_seq>` to get every later change, without a gap or an overlap.
    event_seq = fields.Integer(required=True)


class ListSchema(Schema):
    id = fields.UUID(required=True)
    board_id = fields.UUID(required=True)
    name = fields.String(required=True)
    position = fields.String(required=True)
    archived = fields.Boolean(required=True)
    archived_at = fields.DateTime(required=True, allow_none=True)
    created_at = fields.DateTime(required=True)
    updated_at = fields.DateTime(required=True)
    version = fields.Integer(required=True)


class ChecklistItemSchema(Schema):
    id = fields.UUID(required=True)
    card_id = fields.UUID(required=True)
    text = fields.String(required=True)
    is_done = fields.Boolean(required=True)
    position = fields.String(required=True)
    created_at = fields.DateTime(required=True)
    updated_at = fields.DateTime(required=True)


class CardSchema(Schema):
    id = fields.UUID(required=True)
    board_id = fields.UUID(required=True)
    list_id = fields.UUID(required=True)
    title = fields.String(required=True)
    description = fields.String(required=True)
    position = fields.String(required=True)
    due_at = fields.DateTime(required=True, allow_none=True)
    color = fields.String(required=True, allow_none=True)
    cover_url = fields.String(required=True, allow_none=True)
    labels = fields.List(fields.UUID(), required=True)
    assignees = fields.List(fields.UUID(), required=True)
    checklist = fields.List(fields.Nested(ChecklistItemSchema), required=True)
    archived = fields.Boolean(required=True)
    archived_at = fields.DateTime(required=True, allow_none=True)
    created_by = fields.UUID(required=True, allow_none=True)
    created_at = fields.DateTime(required=True)
    updated_at = fields.DateTime(required=True)
    version = fields.Integer(required=True)


class LabelSchema(Schema):
    id = fields.UUID(required=True)
    board_id = fields.UUID(required=True)
    name = fields.String(required=True)
    color = fields.String(required=True)


class MemberSchema(Schema):
    board_id = fields.UUID(required=True)
    user_id = fields.UUID(required=True)
    role = fields.String(required=True, validate=ROLE)
    display_name = fields.String(required=True)
    granted_by = fields.UUID(required=True, allow_none=True)
    created_at = fields.DateTime(required=True)


class RebalanceSchema(Schema):
    """Entity of `positions.rebalanced`: every key of one ordered collection was rewritten
    (order unchanged). Clients replace the positions they hold for these ids."""

    scope = fields.String(required=True, validate=validate.OneOf(["lists", "cards", "checklist"]))
    parent_id = fields.UUID(required=True)
    positions = fields.Dict(keys=fields.UUID(), values=fields.String(), required=True)


__all__ = [
    "BoardSchema",
    "CardSchema",
    "ChecklistItemSchema",
    "LabelSchema",
    "ListSchema",
    "MemberSchema",
    "RebalanceSchema",
]
