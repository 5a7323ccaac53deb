"""Wire types of comment threads, comments and reactions (entities: `bus/schemas/comment_entities`)."""

from __future__ import annotations

from typing import Any

from marshmallow import Schema, ValidationError, fields, validate, validates_schema

from bus.schemas.comment_entities import CommentSchema, ThreadSchema
from handlers.schemas.common import PageQuerySchema
from handlers.schemas.workspaces import page_schema
from models.comments import THREAD_STATUSES
from services.comment_body import CommentBodySchema
from services.comments import MAX_QUOTED_CHARS

# Block ids are chosen by editors (BlockNote: UUID-like strings); bounded, printable.
MAX_BLOCK_ID_CHARS = 200


def _printable(value: str) -> None:
    if not value.isprintable():
        raise ValidationError("must be printable")


BLOCK_ID = validate.Length(min=1, max=MAX_BLOCK_ID_CHARS)


# Yjs ids: the client is a random 53-bit-safe integer, the clock a 32-bit counter (yrs refuses
# larger ones).
MAX_CLIENT_ID = 2**53 - 1
MAX_CLOCK = 2**32 - 1


class ItemIdSchema(Schema):
    """`{"client", "clock"}`: a Yjs item or type id."""

    client = fields.Integer(required=True, validate=validate.Range(min=0, max=MAX_CLIENT_ID))
    clock = fields.Integer(required=True, validate=validate.Range(min=0, max=MAX_CLOCK))


class RelativePositionSchema(Schema):
    """A Yjs relative position exactly as `Y.relativePositionToJSON` gives it: its type (by id
    or root name) and the item it sticks to (none at the end of the type)."""

    type = fields.Nested(ItemIdSchema, allow_none=True)
    tname = fields.String(allow_none=True, validate=validate.Length(max=MAX_BLOCK_ID_CHARS))
    item = fields.Nested(ItemIdSchema, allow_none=True)
    assoc = fields.Integer(validate=validate.Range(min=-1, max=0))

    @validates_schema
    def _refers_to_something(self, position: dict[str, Any], **_: Any) -> None:
        # Yjs writes the type (by id, or by root name) and, inside it, the item.
        types = [key for key in ("type", "tname") if position.get(key) is not None]
        if len(types) > 1 or not (types or position.get("item") is not None):
            raise ValidationError("needs an item or a type (type or tname, not both)")


class AnchorInSchema(Schema):
    block_id = fields.String(required=True, validate=[BLOCK_ID, _printable])
    start = fields.Nested(RelativePositionSchema, allow_none=True, load_default=None)
    end = fields.Nested(RelativePositionSchema, allow_none=True, load_default=None)
    quoted_text = fields.String(
        allow_none=True, load_default=None, validate=validate.Length(max=MAX_QUOTED_CHARS)
    )


class ThreadCreateSchema(Schema):
    body = fields.Nested(CommentBodySchema, required=True)
    # Document threads: the block (and optionally the text range) the thread is about.
    anchor = fields.Nested(AnchorInSchema, allow_none=True, load_default=None)


class CommentBodyInSchema(Schema):
    body = fields.Nested(CommentBodySchema, required=True)


class ThreadListQuerySchema(PageQuerySchema):
    status = fields.String(validate=validate.OneOf(THREAD_STATUSES))
    block_id = fields.String(validate=[BLOCK_ID, _printable])
    author_id = fields.UUID()


class UnnotifiedMixin(Schema):
    unnotified_mentions = fields.List(
        fields.UUID(),
        required=True,
        metadata={"description": "mentioned members who cannot read this (not notified)"},
    )


class ThreadWrittenSchema(ThreadSchema, UnnotifiedMixin):
    pass


class CommentWrittenSchema(CommentSchema, UnnotifiedMixin):
    pass


ThreadPageSchema = page_schema(ThreadSchema, "ThreadPage")
