"""Boards, lists, cards, labels, checklist items and board members: request and response bodies.

The single objects a response carries (board, list, card, label, member) are the entity schemas
of `bus/schemas/board_entities.py`, shared with board events: an event carries a changed
object exactly as the REST API returns it. Only the request bodies and the composite responses
are defined here.
"""

from __future__ import annotations

from marshmallow import Schema, ValidationError, fields, validate, validates_schema

from bus.schemas.board_entities import (
    BoardSchema,
    CardSchema,
    LabelSchema,
    ListSchema,
    MemberSchema,
)
from models.boards import RESOURCE_ROLES

MAX_NAME_CHARS = 200
MAX_DESCRIPTION_CHARS = 20_000
MAX_CARD_TITLE_CHARS = 500
MAX_CHECKLIST_TEXT_CHARS = 1_000
MAX_LABEL_NAME_CHARS = 50
MAX_URL_CHARS = 2_048
# A card with more assignees or labels than this is a modelling mistake, and the lists are
# replaced wholesale on update, so they stay small.
MAX_ASSIGNEES = 20
MAX_LABELS = 20

NAME = validate.Length(min=1, max=MAX_NAME_CHARS)
DESCRIPTION = validate.Length(max=MAX_DESCRIPTION_CHARS)
COLOR = validate.Regexp(r"^#[0-9a-fA-F]{6}$", error="must be a #rrggbb colour")
HTTPS_URL = [validate.URL(schemes={"https"}), validate.Length(max=MAX_URL_CHARS)]
ROLE = validate.OneOf(RESOURCE_ROLES)
VERSION = validate.Range(min=1)


def _version_field() -> fields.Integer:
    """Optimistic concurrency: the version the client last saw (or send `If-Match: "<n>"`)."""
    return fields.Integer(validate=VERSION)


class PlacementMixin(Schema):
    """Where an item goes among its siblings: right after `after_id`, right before `before_id`,
    between them when both are given (they must be neighbours), or at the end when neither is."""

    after_id = fields.UUID(allow_none=True)
    before_id = fields.UUID(allow_none=True)

    @validates_schema
    def _distinct_neighbours(self, data: dict, **_: object) -> None:
        if data.get("after_id") and data.get("after_id") == data.get("before_id"):
            raise ValidationError("after_id and before_id must differ", field_name="before_id")


# --- requests --------------------------------------------------------------------------------


class BoardCreateSchema(Schema):
    workspace_id = fields.UUID(required=True)
    name = fields.String(required=True, validate=NAME)
    description = fields.String(validate=DESCRIPTION)
    color = fields.String(allow_none=True, validate=COLOR)
    background = fields.String(allow_none=True, validate=HTTPS_URL)
    is_private = fields.Boolean()


class BoardUpdateSchema(Schema):
    name = fields.String(validate=NAME)
    description = fields.String(validate=DESCRIPTION)
    color = fields.String(allow_none=True, validate=COLOR)
    background = fields.String(allow_none=True, validate=HTTPS_URL)
    is_private = fields.Boolean()
    version = _version_field()


class VersionOnlySchema(Schema):
    """Body of archive/unarchive/delete: empty, or the version the client last saw."""

    version = _version_field()


class BoardQuerySchema(Schema):
    include_archived = fields.Boolean(load_default=False)


class MemberPutSchema(Schema):
    role = fields.String(required=True, validate=ROLE)


class ListCreateSchema(PlacementMixin):
    name = fields.String(required=True, validate=NAME)


class ListUpdateSchema(Schema):
    name = fields.String(validate=NAME)
    version = _version_field()


class ListMoveSchema(PlacementMixin):
    version = _version_field()


class LabelCreateSchema(Schema):
    name = fields.String(required=True, validate=validate.Length(min=1, max=MAX_LABEL_NAME_CHARS))
    color = fields.String(required=True, validate=COLOR)


class LabelUpdateSchema(Schema):
    name = fields.String(validate=validate.Length(min=1, max=MAX_LABEL_NAME_CHARS))
    color = fields.String(validate=COLOR)


class _CardFields(Schema):
    description = fields.String(validate=DESCRIPTION)
    due_at = fields.AwareDateTime(allow_none=True)
    color = fields.String(allow_none=True, validate=COLOR)
    cover_url = fields.String(allow_none=True, validate=HTTPS_URL)
    assignees = fields.List(fields.UUID(), validate=validate.Length(max=MAX_ASSIGNEES))
    labels = fields.List(fields.UUID(), validate=validate.Length(max=MAX_LABELS))


class CardCreateSchema(_CardFields, PlacementMixin):
    title = fields.String(required=True, validate=validate.Length(min=1, max=MAX_CARD_TITLE_CHARS))


class CardUpdateSchema(_CardFields):
    title = fields.String(validate=validate.Length(min=1, max=MAX_CARD_TITLE_CHARS))
    version = _version_field()


class CardMoveSchema(PlacementMixin):
    list_id = fields.UUID(required=True)
    version = _version_field()


class ChecklistItemCreateSchema(Schema):
    text = fields.String(
        required=True, validate=validate.Length(min=1, max=MAX_CHECKLIST_TEXT_CHARS)
    )
    is_done = fields.Boolean()


class ChecklistItemUpdateSchema(Schema):
    text = fields.String(validate=validate.Length(min=1, max=MAX_CHECKLIST_TEXT_CHARS))
    is_done = fields.Boolean()


# --- responses ----------------------------------------------------------------------------


class MemberListSchema(Schema):
    members = fields.List(fields.Nested(MemberSchema), required=True)


class ListWithCardsSchema(ListSchema):
    cards = fields.List(fields.Nested(CardSchema), required=True)


class BoardDetailSchema(BoardSchema):
    """One board with everything on it, in display order (one request, a fixed number of
    queries whatever the number of cards)."""

    lists = fields.List(fields.Nested(ListWithCardsSchema), required=True)
    labels = fields.List(fields.Nested(LabelSchema), required=True)
