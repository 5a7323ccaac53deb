"""Wire types of the block endpoints (`/api/v1/documents/{doc_id}/blocks/…`).

The block itself (`type`, `props`, `content`, `children`) is checked by the service against
BlockNote's JSON Schema (services/block_schema.py), which names the offending field; these schemas
only fix the envelope (unknown envelope fields are a 400, as everywhere).
"""

from __future__ import annotations

from marshmallow import Schema, ValidationError, fields, validate

from handlers.schemas.documents import BlockSchema

MAX_BLOCK_ID_CHARS = 200


def _block_id(value: str) -> None:
    if not value.isprintable() or value != value.strip():
        raise ValidationError("must be printable, without surrounding spaces")


BLOCK_ID = validate.Length(min=1, max=MAX_BLOCK_ID_CHARS)


def _id_field(description: str) -> fields.String:
    return fields.String(
        allow_none=True, validate=[BLOCK_ID, _block_id], metadata={"description": description}
    )


class BlockBodySchema(Schema):
    """A BlockNote block as written (PartialBlock): `content` is a string, inline items or a
    tableContent; `children` are blocks of the same shape."""

    id = _id_field("the new block's id; generated when absent")
    type = fields.String(required=True)
    props = fields.Dict(keys=fields.String(), values=fields.Raw())
    content = fields.Raw()
    children = fields.List(fields.Dict(), metadata={"description": "child blocks (same shape)"})


class BlockCreateSchema(Schema):
    block = fields.Nested(BlockBodySchema, required=True)
    parent_id = _id_field("the parent block; null or absent: top level")
    after = _id_field("insert after this sibling")
    before = _id_field("insert before this sibling")


class BlockUpdateSchema(Schema):
    type = fields.String()
    props = fields.Dict(
        keys=fields.String(), values=fields.Raw(), metadata={"description": "merged"}
    )
    content = fields.Raw(metadata={"description": "replaces the block's content"})


class BlockMoveSchema(Schema):
    parent_id = _id_field("the new parent block; null or absent: top level")
    after = _id_field("place after this sibling")
    before = _id_field("place before this sibling")


class BlockResultSchema(Schema):
    block = fields.Nested(BlockSchema, allow_none=True, required=True)
    parent_id = fields.String(allow_none=True)
    position = fields.Integer(metadata={"description": "index among its siblings"})
    version = fields.Integer(
        required=True, metadata={"description": "the log seq of the write (or of the read)"}
    )
    applied = fields.Boolean(
        metadata={"description": "false: a retry of an applied attempt, or nothing to change"}
    )
