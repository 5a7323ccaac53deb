"""Workspace activity events: staged in the change's transaction, published after it commits.

An action function stages its events with `stage(conn, ...)` inside its Postgres transaction (an
outbox row holds the event) and calls `publish_staged(ctx, staged)` after the commit. Publishing
after commit means no event describes a rolled-back change; staging in the outbox means an event
whose publish failed (NATS down) is not lost: `relay_pending(ctx)` republishes it later with the
same `Nats-Msg-Id` (JetStream drops a duplicate within its window). The request that made the change
succeeds either way: the change is committed and its event will follow.

The boards service can publish its `board.*`/`list.*`/`card.*` activity through the same functions.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import asyncpg
import structlog

from bus.events import EventSchemaError, publish_event
from bus.jetstream import workspace_activity_subject
from bus.schemas.activity import ActivityEventSchema
from core.errors import Unavailable
from models.repo import outbox as outbox_repo

if TYPE_CHECKING:
    from server.context import AppContext

log = structlog.get_logger(__name__)

OUTBOX_KIND = "activity_event"
# The relay leaves fresh rows alone: the request that staged them is publishing them right now.
RELAY_MIN_AGE_S = 30.0
RELAY_BATCH = 100
_schema = ActivityEventSchema()


@dataclass(frozen=True)
class StagedEvent:
    outbox_id: str
    subject: str
    event: dict[str, Any]


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


async def stage(
    conn: asyncpg.Connection,
    workspace_id: str,
    event_type: str,
    actor_id: str | None,
    data: dict[str, Any],
) -> StagedEvent:
    """Record an event in the current transaction (call `publish_staged` after the commit)."""
    event = build_event(workspace_id, event_type, actor_id, data)
    subject = workspace_activity_subject(event["workspace_id"])
    outbox_id = await outbox_repo.insert(conn, OUTBOX_KIND, {"subject": subject, "event": event})
    return StagedEvent(outbox_id, subject, event)


async def publish_staged(ctx: AppContext, staged: list[StagedEvent]) -> None:
    """Publish committed events; on failure they stay in the outbox for `relay_pending`."""
    published = []
    for item in staged:
        try:
            await publish_event(ctx.nats, item.subject, _schema, item.event, item.event["id"])
        except Unavailable as err:
            log.warning("activity.publish_deferred", type=item.event["type"], error=repr(err))
            continue
        published.append(item.outbox_id)
    if published:
        await outbox_repo.mark_processed(ctx.db, published)


async def relay_pending(ctx: AppContext, *, min_age_s: float = RELAY_MIN_AGE_S) -> int:
    """Publish staged events whose inline publish failed; returns how many went out.

    Meant for a periodic job (the scheduler issue wires it); safe on several nodes at once.
    """
    sent = 0
    async with ctx.db.transaction() as conn:
        rows = await outbox_repo.claim_pending(conn, OUTBOX_KIND, min_age_s, RELAY_BATCH)
        for row in rows:
            payload = row["payload"]
            try:
                await publish_event(
                    ctx.nats, payload["subject"], _schema, payload["event"], payload["event"]["id"]
                )
            except Unavailable as err:
                # JetStream is down: the rest of the batch would fail the same way, slowly.
                await outbox_repo.record_failure(conn, str(row["id"]), repr(err))
                break
            await outbox_repo.mark_processed(conn, [str(row["id"])])
            sent += 1
    return sent
