"""JSON events on JetStream (`COLLAB_EVENTS`): board events, notifications, workspace activity.

One place emits events, after the Postgres transaction that made the change has committed (Zulip's
`send_event_on_commit`). Every payload is validated against its marshmallow schema before it
leaves (the schema is the documented contract for external consumers). Publishing uses a
`Nats-Msg-Id` derived from the change, so a retry after an unknown outcome (timeout) is
deduplicated by JetStream instead of stored twice.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

import marshmallow
import nats.errors
import nats.js.errors
import structlog

from bus.connection import NatsConnection
from core.errors import Unavailable

log = structlog.get_logger(__name__)

PUBLISH_TIMEOUT_S = 2.0
PUBLISH_ATTEMPTS = 3


class EventSchemaError(ValueError):
    """An emit site built an event that does not match its schema (a bug, never client input)."""


async def publish_event(
    nats_conn: NatsConnection,
    subject: str,
    schema: marshmallow.Schema,
    event: dict[str, Any],
    msg_id: str,
    headers: dict[str, str] | None = None,
) -> int:
    """Validate and publish one event; returns its stream sequence.

    Retries only with the same `msg_id` (an unknown outcome must not create a duplicate) and raises
    `Unavailable` when JetStream cannot take it. `headers` are extra NATS headers for consumers
    (e.g. `Collab-Board-Seq`); `Nats-Msg-Id` is always `msg_id`.
    """
    errors = schema.validate(event)
    if errors:
        raise EventSchemaError(f"event for {subject} violates its schema: {errors}")
    payload = json.dumps(event, default=str, separators=(",", ":")).encode()
    last_error: Exception | None = None
    for attempt in range(PUBLISH_ATTEMPTS):
        try:
            ack = await nats_conn.jetstream.publish(
                subject,
                payload,
                timeout=PUBLISH_TIMEOUT_S,
                headers={**(headers or {}), "Nats-Msg-Id": msg_id},
            )
            return ack.seq
        except (
            nats.errors.TimeoutError,
            nats.errors.NoRespondersError,
            nats.js.errors.NoStreamResponseError,  # no stream leader right now (R4)
            nats.errors.ConnectionClosedError,
            nats.js.errors.APIError,
        ) as err:
            last_error = err
            log.warning("event.publish_retry", subject=subject, attempt=attempt, error=repr(err))
            await asyncio.sleep(0.05 * (attempt + 1))
    raise Unavailable("event log unavailable") from last_error
