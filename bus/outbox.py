"""The after-commit outbox: how every JSON event (board, activity, notification) reaches JetStream.

Domain code never publishes. Inside its Postgres transaction it stages events
(`services/unit_of_work.py` calls `stage`), which validates each against its kind's schema — a bad
event is a bug and rolls the change back — and writes it to a table in that transaction, so no
event describes a rolled-back change and none is lost when NATS is down. After the commit the unit
of work hands what it staged to `OutboxRelay.publish_committed`, the one publishing mechanism, and
the relay's one job (`OUTBOX_RELAY_JOB`) republishes whatever that did not get out (NATS outage,
node crash), with the same `Nats-Msg-Id`, so JetStream drops a copy within its duplicate window.

Two queues, because two kinds of stream need different guarantees:

* **ordered** (board events, `board_events` table): a board's events go out in its gapless `seq`
  order, event n+1 only after JetStream acknowledged event n. After a commit the board is handed
  to a per-board drainer that runs in the background (the request does not wait for it); several
  drainers of one board (this node, another node's sweep) may overlap: the message id
  `board:<id>:<seq>` makes the second copy a no-op. The table is also the `since` replay source.
* **independent** (activity and user notifications, `outbox` table): published right after
  the commit, before the unit of work returns, in staging order; each row is marked processed once
  JetStream has it.

Consumers must still ignore an event they have seen: a republish after the duplicate window (a crash
between the PubAck and marking the row) stores a second copy.
"""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

import asyncpg
import marshmallow
import structlog

from bus.connection import NatsConnection
from bus.events import EventSchemaError, publish_event
from bus.jetstream import (
    board_event_subject,
    doc_event_subject,
    user_notification_subject,
    workspace_activity_subject,
)
from bus.schemas.activity import ActivityEventSchema
from bus.schemas.board_events import BoardEventSchema
from bus.schemas.doc_events import DocEventSchema
from bus.schemas.notifications import NotificationEventSchema
from core.errors import Unavailable
from models.db import Database
from models.repo import board_events as board_events_repo
from models.repo import outbox as outbox_repo

log = structlog.get_logger(__name__)

OUTBOX_RELAY_JOB = "outbox_relay"
# The relay job's period: what a NATS outage held back goes out within seconds of NATS' return.
RELAY_INTERVAL_S = 5.0
BOARD_SEQ_HEADER = "Collab-Board-Seq"
# Events per database round trip while draining one board / per relay transaction.
RELAY_BATCH = 200
# The relay leaves young rows alone: the node that committed them is publishing them right now.
# Board events are drained in the background within milliseconds; independent events are
# published inline, where a publish may retry for up to ~6 s (`bus/events.py`).
ORDERED_MIN_AGE_S = 2.0
INDEPENDENT_MIN_AGE_S = 30.0
BOARDS_PER_SWEEP = 500


@dataclass(frozen=True)
class EventKind:
    """One family of events: its schema (the public contract) and the queue it waits in."""

    name: str
    schema: marshmallow.Schema
    ordered: bool = False

    @property
    def outbox_kind(self) -> str:
        """The `outbox.kind` of its rows (independent kinds only)."""
        return f"{self.name}_event"


BOARD = EventKind("board", BoardEventSchema(), ordered=True)
ACTIVITY = EventKind("activity", ActivityEventSchema())
NOTIFICATION = EventKind("notification", NotificationEventSchema())
DOCUMENT = EventKind("document", DocEventSchema())
KINDS: dict[str, EventKind] = {
    kind.name: kind for kind in (BOARD, ACTIVITY, NOTIFICATION, DOCUMENT)
}


@dataclass(frozen=True)
class OutboundEvent:
    """One event ready to stage: what is published, where, and under which message id."""

    kind: EventKind
    subject: str
    msg_id: str
    body: dict[str, Any]
    headers: Mapping[str, str] = field(default_factory=dict)

    def check(self) -> None:
        """Raise `EventSchemaError` if the body does not match the kind's schema."""
        errors = self.kind.schema.validate(self.body)
        if errors:
            raise EventSchemaError(f"{self.body.get('type')} event violates its schema: {errors}")


def board_event(body: dict[str, Any]) -> OutboundEvent:
    """A board event (`bus/schemas/board_events.py`) on `collab.board.<id>.event`."""
    board_id, seq = str(body["board_id"]), int(body["seq"])
    return OutboundEvent(
        BOARD,
        board_event_subject(board_id),
        f"board:{board_id}:{seq}",
        body,
        {BOARD_SEQ_HEADER: str(seq)},
    )


def activity_event(body: dict[str, Any], msg_id: str | None = None) -> OutboundEvent:
    """A workspace activity event on `collab.workspace.<id>.activity` (message id: its `id`)."""
    return OutboundEvent(
        ACTIVITY,
        workspace_activity_subject(str(body["workspace_id"])),
        msg_id or str(body["id"]),
        body,
    )


def notification_event(body: dict[str, Any]) -> OutboundEvent:
    """A user notification event on `collab.user.<id>.notification` (message id: its `id`)."""
    return OutboundEvent(
        NOTIFICATION, user_notification_subject(str(body["user_id"])), str(body["id"]), body
    )


def doc_event(body: dict[str, Any]) -> OutboundEvent:
    """A document event (`bus/schemas/doc_events.py`) on `collab.doc.<id>.event`."""
    return OutboundEvent(
        DOCUMENT, doc_event_subject(str(body["document_id"])), str(body["id"]), body
    )


@dataclass(frozen=True)
class Staged:
    """A staged event: its row (`outbox` id, or the board and seq of a `board_events` row)."""

    event: OutboundEvent
    row_id: str


async def stage(conn: asyncpg.Connection, event: OutboundEvent) -> Staged:
    """Check the event and write it in the caller's transaction (published after the commit)."""
    event.check()
    body = event.body
    if event.kind.ordered:
        await board_events_repo.insert_event(
            conn, str(body["board_id"]), str(body["workspace_id"]), body["seq"], body["type"], body
        )
        return Staged(event, f"{body['board_id']}:{body['seq']}")
    row_id = await outbox_repo.insert(conn, event.kind.outbox_kind, _row_payload(event))
    return Staged(event, row_id)


def _row_payload(event: OutboundEvent) -> dict[str, Any]:
    return {
        "subject": event.subject,
        "msg_id": event.msg_id,
        "headers": dict(event.headers),
        "event": event.body,
    }


def _from_row(kind: EventKind, payload: dict[str, Any]) -> OutboundEvent:
    # Rows written before message ids were stored used the event id.
    msg_id = payload.get("msg_id") or str(payload["event"]["id"])
    return OutboundEvent(
        kind, payload["subject"], msg_id, payload["event"], payload.get("headers") or {}
    )


class Spawner(Protocol):
    def __call__(
        self, coro: Coroutine[Any, Any, Any], *, name: str
    ) -> asyncio.Task[Any]: ...  # pragma: no cover - a signature


class OutboxRelay:
    """A node component: publishes committed events, and relays what was held back."""

    def __init__(self, db: Database, nats: NatsConnection, spawn: Spawner) -> None:
        self.db = db
        self.nats = nats
        self.spawn = spawn
        # board id → "run again when done" (a commit arrived while that board was draining).
        self._draining: dict[str, bool] = {}
        self._tasks: set[asyncio.Task[None]] = set()

    async def start(self) -> None:
        return None

    async def stop(self) -> None:
        # In-flight publishes finish (bounded by the publish timeout); the rest is relayed later.
        await self.wait_idle(timeout_s=5)

    async def wait_idle(self, timeout_s: float | None = None) -> None:
        """Until the board drains started so far are done (shutdown, tests, ops)."""
        if self._tasks:
            await asyncio.wait(set(self._tasks), timeout=timeout_s)

    async def publish_committed(self, staged: Iterable[Staged]) -> None:
        """The one way events leave after a commit: independent ones now, in order (a failure
        leaves them to the relay job), ordered ones by their board's drainer."""
        boards: set[str] = set()
        done: list[str] = []
        for item in staged:
            if item.event.kind.ordered:
                boards.add(str(item.event.body["board_id"]))
                continue
            try:
                await self._publish(item.event)
            except Unavailable as err:
                log.warning(
                    "outbox.publish_deferred", type=item.event.body.get("type"), error=repr(err)
                )
                continue
            done.append(item.row_id)
        if done:
            await outbox_repo.mark_processed(self.db, done)
        self.notify_boards(boards)

    async def _publish(self, event: OutboundEvent) -> None:
        await publish_event(
            self.nats,
            event.subject,
            event.kind.schema,
            event.body,
            event.msg_id,
            headers=dict(event.headers) or None,
        )

    # --- ordered queue: board events --------------------------------------------------------

    def notify_boards(self, board_ids: Iterable[str]) -> None:
        """Boards with newly committed events: publish them soon, one run per board at a time."""
        for board_id in board_ids:
            if board_id in self._draining:
                self._draining[board_id] = True
                continue
            self._draining[board_id] = False
            task = self.spawn(self._drain(board_id), name=f"board-relay-{board_id}")
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    async def _drain(self, board_id: str) -> None:
        try:
            while True:
                self._draining[board_id] = False
                more = await self.publish_board_batch(board_id)
                if not more and not self._draining[board_id]:
                    return
        except Unavailable as err:
            log.warning("board_relay.deferred", board_id=board_id, error=repr(err))
        finally:
            self._draining.pop(board_id, None)

    async def publish_board_batch(self, board_id: str) -> bool:
        """Publish one batch of the board's unpublished events in order; True if more remain."""
        rows = await board_events_repo.unpublished(self.db, board_id, RELAY_BATCH)
        done: list[int] = []
        try:
            for row in rows:
                await self._publish_skipping_invalid(board_event(row["payload"]))
                done.append(row["seq"])
        finally:
            if done:
                await board_events_repo.mark_published(self.db, board_id, done)
        return len(rows) == RELAY_BATCH

    async def _publish_skipping_invalid(self, event: OutboundEvent) -> None:
        try:
            await self._publish(event)
        except EventSchemaError as err:
            # Checked when it was staged, so only a schema change can get here; holding the
            # queue forever would be worse than skipping one event loudly.
            log.error("outbox.invalid_event_skipped", msg_id=event.msg_id, error=str(err))

    # --- the relay job ---------------------------------------------------------------------

    async def sweep(self, min_age_s: float | None = None) -> int:
        """Republish what the committing nodes did not get out (safe on several nodes at once);
        returns how many boards and independent events were relayed."""
        boards = await board_events_repo.boards_with_unpublished(
            self.db, ORDERED_MIN_AGE_S if min_age_s is None else min_age_s, BOARDS_PER_SWEEP
        )
        self.notify_boards(boards)
        sent = 0
        for kind in KINDS.values():
            if not kind.ordered:
                sent += await self._relay_independent(
                    kind, INDEPENDENT_MIN_AGE_S if min_age_s is None else min_age_s
                )
        return len(boards) + sent

    async def _relay_independent(self, kind: EventKind, min_age_s: float) -> int:
        sent = 0
        async with self.db.transaction() as conn:
            rows = await outbox_repo.claim_pending(conn, kind.outbox_kind, min_age_s, RELAY_BATCH)
            for row in rows:
                try:
                    await self._publish_skipping_invalid(_from_row(kind, row["payload"]))
                except Unavailable as err:
                    # JetStream is down: the rest of the batch would fail the same way, slowly.
                    await outbox_repo.record_failure(conn, str(row["id"]), repr(err))
                    break
                await outbox_repo.mark_processed(conn, [str(row["id"])])
                sent += 1
        if sent:
            log.info("outbox.relayed", kind=kind.name, count=sent)
        return sent
