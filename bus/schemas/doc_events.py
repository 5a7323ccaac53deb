"""Document events on `collab.doc.<doc_id>.event` (stream COLLAB_EVENTS): the public contract.

The JSON side of a document, next to its binary update log: today the comment threads on it.
Published after the commit of the change (`bus/outbox.py`), `Nats-Msg-Id` = the event `id`; the
JetStream stream sequence orders them (the document socket's `events_since` resumes from it).
A consumer ignores types it does not know and an `id` it has seen.

`entity` is the changed thread or comment exactly as the REST API returns it
(`bus/schemas/comment_entities.py`); for `comment.deleted` it is the tombstone.
"""

from __future__ import annotations

from typing import Any, ClassVar

from marshmallow import Schema, ValidationError, fields, validate, validates_schema

from bus.schemas.comment_entities import CommentSchema, ThreadSchema

# The comment event types, shared with the board events of card threads.
COMMENT_ENTITY_SCHEMAS: dict[str, type[Schema]] = {
    "thread.created": ThreadSchema,
    "thread.resolved": ThreadSchema,
    "thread.reopened": ThreadSchema,
    # The server's anchor tracking changed `anchor.state` or `anchor.quoted_text`.
    "thread.anchor_changed": ThreadSchema,
    "comment.created": CommentSchema,
    "comment.updated": CommentSchema,
    "comment.deleted": CommentSchema,
    "comment.reactions_changed": CommentSchema,
}
EVENT_TYPES = tuple(COMMENT_ENTITY_SCHEMAS)


class EntityByType(Schema):
    """An event whose `entity` is checked against the schema its `type` names (`ENTITIES`)."""

    ENTITIES: ClassVar[dict[str, type[Schema]]] = {}

    @validates_schema
    def _entity_matches_type(self, event: dict[str, Any], **_: Any) -> None:
        schema = self.ENTITIES.get(event.get("type", ""))
        if schema is None:
            return
        errors = schema().validate(event.get("entity") or {})
        if errors:
            raise ValidationError(errors, field_name="entity")


class DocEventSchema(EntityByType):
    ENTITIES = COMMENT_ENTITY_SCHEMAS

    id = fields.UUID(required=True)
    type = fields.String(required=True, validate=validate.OneOf(EVENT_TYPES))
    document_id = fields.UUID(required=True)
    workspace_id = fields.UUID(required=True)
    thread_id = fields.UUID(required=True)
    actor_id = fields.UUID(required=True, allow_none=True)  # null: the server (anchor tracking)
    at = fields.DateTime(required=True)
    entity = fields.Dict(keys=fields.String(), values=fields.Raw(allow_none=True), required=True)
