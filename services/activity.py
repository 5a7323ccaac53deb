"""Workspace activity events (`collab.workspace.<id>.activity`): built here, emitted through the
unit of work (`services/unit_of_work.py`), which stages them in the change's transaction and has
the outbox publish them after the commit (`bus/outbox.py`).

Board events get their activity copy here too (`board_copy`), staged next to the board event in
the same transaction: the relay only ever publishes what was staged.

Types: an activity event's `data` is open JSON on purpose: each event type names its own keys, and
`bus/schemas/activity.py` checks the envelope when the event is emitted.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from bus.events import EventSchemaError
from bus.outbox import OutboundEvent, activity_event
from bus.schemas.activity import ActivityEventSchema

if TYPE_CHECKING:
    # Annotation only: board_changes stages its copies through this module.
    from services.board_changes import BoardEvent

# Board event types that are not interesting for the workspace activity log (reports, audit).
NOT_ACTIVITY = frozenset({"positions.rebalanced"})
# On the activity subject, board grants are `board_member.*` so they cannot be confused with the
# workspace's own `member.*` events.
ACTIVITY_TYPE_RENAMES = {
    "member.granted": "board_member.granted",
    "member.revoked": "board_member.revoked",
}
_schema = ActivityEventSchema()


def build_event(
    workspace_id: str, event_type: str, actor_id: str | None, data: dict[str, Any]
) -> dict[str, Any]:
    """An activity event in its wire form (JSON-ready), validated against its schema."""
    event = {
        "type": event_type,
        "id": str(uuid.uuid4()),
        "workspace_id": str(workspace_id),
        "actor_id": None if actor_id is None else str(actor_id),
        "at": datetime.now(UTC).isoformat(),
        "data": _json_ready(data),
    }
    errors = _schema.validate(event)
    if errors:
        raise EventSchemaError(f"{event_type} event violates its schema: {errors}")
    return event


def _json_ready(data: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in data.items():
        if isinstance(value, datetime):
            out[key] = value.isoformat()
        elif isinstance(value, uuid.UUID):
            out[key] = str(value)
        elif isinstance(value, dict):
            out[key] = _json_ready(value)
        else:
            out[key] = value
    return out


def event(
    workspace_id: str, event_type: str, actor_id: str | None, data: dict[str, Any]
) -> OutboundEvent:
    """An activity event ready for `UnitOfWork.emit`."""
    return activity_event(build_event(workspace_id, event_type, actor_id, data))


def board_copy(board_event: BoardEvent) -> OutboundEvent | None:
    """The workspace activity copy of a board event (same id), or None if it has none."""
    if board_event.type in NOT_ACTIVITY:
        return None
    body = {
        "type": ACTIVITY_TYPE_RENAMES.get(board_event.type, board_event.type),
        "id": board_event.id,
        "workspace_id": board_event.workspace_id,
        "actor_id": board_event.actor_id,
        "at": board_event.at,
        "data": {
            "board_id": board_event.board_id,
            "seq": board_event.seq,
            "entity": board_event.entity,
        },
    }
    return activity_event(body, f"activity:board:{board_event.board_id}:{board_event.seq}")
