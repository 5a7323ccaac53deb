"""Comment entities: a thread and a comment as the REST API returns them.

They are the `entity` of comment events (document events on `collab.doc.<id>.event`, board events
for card threads) and the objects of REST responses (`handlers/schemas/comments.py`), defined
here, next to the event schemas, because services and events use them and neither may import the
HTTP layer.
"""

from __future__ import annotations

from marshmallow import Schema, fields, validate

from models.comments import ANCHOR_STATES, THREAD_STATUSES

# A fixed set, named like GitHub's reactions: clients draw the glyphs; the server never stores
# free-form emoji (no unbounded vocabulary, no lookalike characters, one sort order).
REACTIONS = ("thumbs_up", "thumbs_down", "laugh", "hooray", "confused", "heart", "rocket", "eyes")


class ReactionSchema(Schema):
    emoji = fields.String(required=True, validate=validate.OneOf(REACTIONS))
    count = fields.Integer(required=True)
    user_ids = fields.List(fields.UUID(), required=True)


class CommentSchema(Schema):
    id = fields.UUID(required=True)
    thread_id = fields.UUID(required=True)
    # null: the thread's top comment; replies point to it (one level).
    parent_id = fields.UUID(required=True, allow_none=True)
    author_id = fields.UUID(required=True, allow_none=True)
    # The rich text (`services/comment_body.py`); null for a deleted comment (tombstone).
    body = fields.Dict(required=True, allow_none=True)
    text = fields.String(required=True, metadata={"description": "the body as plain text"})
    mentions = fields.List(fields.UUID(), required=True)
    edited = fields.Boolean(required=True)
    edited_at = fields.DateTime(required=True, allow_none=True)
    deleted = fields.Boolean(required=True)
    deleted_at = fields.DateTime(required=True, allow_none=True)
    created_at = fields.DateTime(required=True)
    reactions = fields.List(fields.Nested(ReactionSchema), required=True)


class AnchorSchema(Schema):
    block_id = fields.String(required=True)
    # Yjs relative positions as `Y.relativePositionToJSON` gives them (null: the whole block).
    start = fields.Dict(required=True, allow_none=True)
    end = fields.Dict(required=True, allow_none=True)
    state = fields.String(required=True, validate=validate.OneOf(ANCHOR_STATES))
    quoted_text = fields.String(required=True, allow_none=True)


class ThreadSchema(Schema):
    id = fields.UUID(required=True)
    workspace_id = fields.UUID(required=True)
    document_id = fields.UUID(required=True, allow_none=True)
    board_id = fields.UUID(required=True, allow_none=True)
    card_id = fields.UUID(required=True, allow_none=True)
    # null: a thread on the whole document, or a card thread.
    anchor = fields.Nested(AnchorSchema, required=True, allow_none=True)
    status = fields.String(required=True, validate=validate.OneOf(THREAD_STATUSES))
    resolved_by = fields.UUID(required=True, allow_none=True)
    resolved_at = fields.DateTime(required=True, allow_none=True)
    created_by = fields.UUID(required=True, allow_none=True)
    created_at = fields.DateTime(required=True)
    updated_at = fields.DateTime(required=True)
    comment_count = fields.Integer(required=True)
    comments = fields.List(fields.Nested(CommentSchema), required=True)
