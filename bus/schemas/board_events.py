"""Board events on `collab.board.<board_id>.event` (stream COLLAB_EVENTS): the public contract.

Every mutation of a board or of anything on it publishes one event, in the order of the board's
gapless sequence `seq` (1, 2, 3, … per board; not the JetStream stream sequence). Headers:
`Nats-Msg-Id: board:<board_id>:<seq>` (JetStream deduplication) and `Collab-Board-Seq: <seq>`.
A consumer keeps the highest `seq` it applied and ignores anything at or below it (a republish
after an unknown publish outcome can repeat an event).

`entity` is the changed object exactly as the REST API returns it (the schema for each type is
in `ENTITY_SCHEMAS`); for deletions it is the object as it was just before.
"""

from __future__ import annotations

from marshmallow import Schema, fields, validate

from bus.schemas.board_entities import (
    BoardSchema,
    CardSchema,
    LabelSchema,
    ListSchema,
    MemberSchema,
    RebalanceSchema,
)
from bus.schemas.doc_events import COMMENT_ENTITY_SCHEMAS, EntityByType

ENTITY_SCHEMAS: dict[str, type[Schema]] = {
    "board.created": BoardSchema,
    "board.updated": BoardSchema,
    "board.archived": BoardSchema,
    "board.unarchived": BoardSchema,
    "board.deleted": BoardSchema,
    "list.created": ListSchema,
    "list.updated": ListSchema,
    "list.moved": ListSchema,
    "list.archived": ListSchema,
    "list.unarchived": ListSchema,
    "card.created": CardSchema,
    "card.updated": CardSchema,
    "card.moved": CardSchema,
    "card.archived": CardSchema,
    "card.unarchived": CardSchema,
    "card.deleted": CardSchema,
    "label.created": LabelSchema,
    "label.updated": LabelSchema,
    "label.deleted": LabelSchema,
    "member.granted": MemberSchema,
    "member.revoked": MemberSchema,
    "positions.rebalanced": RebalanceSchema,
    # Comment threads on the board's cards (entity: the thread or comment, as on documents).
    **COMMENT_ENTITY_SCHEMAS,
}
EVENT_TYPES = tuple(ENTITY_SCHEMAS)


class BoardEventSchema(EntityByType):
    ENTITIES = ENTITY_SCHEMAS

    id = fields.UUID(required=True)
    type = fields.String(required=True, validate=validate.OneOf(EVENT_TYPES))
    board_id = fields.UUID(required=True)
    workspace_id = fields.UUID(required=True)
    seq = fields.Integer(required=True, validate=validate.Range(min=1))
    actor_id = fields.UUID(required=True, allow_none=True)
    at = fields.DateTime(required=True)
    entity = fields.Dict(keys=fields.String(), values=fields.Raw(allow_none=True), required=True)
