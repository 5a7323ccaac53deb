"""Wire types of `GET /api/v1/search/`."""

from __future__ import annotations

from marshmallow import Schema, fields, validate

from services.search import KINDS
from services.search_query import MAX_QUERY_CHARS

_TYPES = "|".join(KINDS)


class SearchQuerySchema(Schema):
    q = fields.String(
        required=True,
        validate=validate.Length(min=1, max=MAX_QUERY_CHARS),
        metadata={"description": "words to find; the last one matches as a prefix"},
    )
    type = fields.String(
        validate=validate.Regexp(rf"^({_TYPES})(,({_TYPES}))*$"),
        metadata={
            "description": "comma-separated kinds: document, block, card, comment (default all)"
        },
    )
    workspace_id = fields.UUID()
    board_id = fields.UUID()
    author_id = fields.UUID(metadata={"description": "who created the document or card"})
    updated_after = fields.AwareDateTime()
    cursor = fields.String(validate=validate.Length(min=1, max=400))
    limit = fields.Integer(load_default=20, validate=validate.Range(min=1, max=100))


class SearchHitSchema(Schema):
    type = fields.String(required=True, validate=validate.OneOf(KINDS))
    document_id = fields.UUID(allow_none=True)
    block_id = fields.String(allow_none=True)
    card_id = fields.UUID(allow_none=True)
    thread_id = fields.UUID(allow_none=True, metadata={"description": "comment hits: the thread"})
    comment_id = fields.UUID(allow_none=True, metadata={"description": "comment hits"})
    board_id = fields.UUID(allow_none=True)
    workspace_id = fields.UUID(required=True)
    title = fields.String(required=True)
    snippet = fields.String(
        required=True, metadata={"description": "HTML-escaped text, matches in <mark>"}
    )
    rank = fields.Float(required=True)
    author_id = fields.UUID(allow_none=True)
    updated_at = fields.DateTime(required=True)
    link = fields.String(
        required=True, metadata={"description": "API path of the block, card or document"}
    )


class SearchPageSchema(Schema):
    results = fields.List(fields.Nested(SearchHitSchema), required=True)
    next_cursor = fields.String(allow_none=True, required=True)
