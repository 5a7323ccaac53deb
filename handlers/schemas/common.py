"""Wire types shared by every endpoint: the error body and pagination."""

from __future__ import annotations

from marshmallow import Schema, fields, validate

MAX_PAGE_SIZE = 100
DEFAULT_PAGE_SIZE = 50


class ErrorDetailSchema(Schema):
    code = fields.String(required=True)
    message = fields.String(required=True)
    # `fields` would shadow marshmallow's Schema.fields: the attribute is renamed, the key is not.
    field_errors = fields.Dict(keys=fields.String(), values=fields.Raw(), data_key="fields")


class ErrorSchema(Schema):
    error = fields.Nested(ErrorDetailSchema, required=True)


class PageQuerySchema(Schema):
    """limit/offset pagination: simple, stable for the small lists we page (members, boards)."""

    limit = fields.Integer(
        load_default=DEFAULT_PAGE_SIZE, validate=validate.Range(min=1, max=MAX_PAGE_SIZE)
    )
    offset = fields.Integer(load_default=0, validate=validate.Range(min=0, max=1_000_000))
