"""Publishing committed board events to JetStream, in order, without losing any.

Events are written to `board_events` in the transaction of the change (services/board_changes.py).
After the commit the relay publishes every unpublished event of that board, oldest first, to
`collab.board.<id>.event` (and a copy to the workspace activity subject), then marks them published.

* In order: a publisher sends event n+1 only after JetStream acknowledged event n (a duplicate ack
  counts: it means n is stored). Several publishers of one board (the node that made the change, a
  sweep on another node) may overlap; `Nats-Msg-Id = board:<id>:<seq>` makes the second copy a
  no-op within the duplicate window, so the stream still holds each event once, in `seq` order.
* Nothing lost: a failed publish (NATS down) stops that board's run and leaves the rows unpublished;
  the sweep job (every `SWEEP_INTERVAL_S`, one node at a time via the scheduler) republishes them. A
  node that dies between the commit and the publish is covered by the same sweep.
* Consumers must still ignore an event whose `seq` they have seen: a republish after the duplicate
  window (a crash between the PubAck and marking the row) stores a second copy.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any

import structlog

from bus.events import EventSchemaError, publish_event
from bus.jetstream import board_event_subject, workspace_activity_subject
from bus.schemas.activity import ActivityEventSchema
from bus.schemas.board_events import BoardEventSchema
from core.errors import Unavailable
from models.repo import board_events as events_repo

if TYPE_CHECKING:
    from server.context import AppContext
    from server.scheduler import Scheduler

log = structlog.get_logger(__name__)

BOARD_SEQ_HEADER = "Collab-Board-Seq"
# Events per database round trip while draining one board.
RELAY_BATCH = 200
SWEEP_JOB = "board_events_sweep"
PRUNE_JOB = "board_events_prune"
# The sweep republishes what the committing node did not get out (NATS outage, node crash).
SWEEP_INTERVAL_S = 5.0
# Younger rows are still being published by the node that committed them: leave them alone.
SWEEP_MIN_AGE_S = 2.0
SWEEP_BOARDS_PER_RUN = 500
PRUNE_INTERVAL_S = 3600.0
# Board event types that are not interesting for the workspace activity log (reports, audit).
NOT_ACTIVITY = frozenset({"positions.rebalanced"})
# On the activity subject, board grants are `board_member.*` so they cannot be confused with the
# workspace's own `member.*` events.
ACTIVITY_TYPE_RENAMES = {
    "member.granted": "board_member.granted",
    "member.revoked": "board_member.revoked",
}

_board_schema = BoardEventSchema()
_activity_schema = ActivityEventSchema()


def board_msg_id(board_id: str, seq: int) -> str:
    return f"board:{board_id}:{seq}"


def activity_msg_id(board_id: str, seq: int) -> str:
    return f"activity:board:{board_id}:{seq}"


def activity_event(event: dict[str, Any]) -> dict[str, Any] | None:
    """The workspace activity copy of a board event (same id), or None if it has none."""
    if event["type"] in NOT_ACTIVITY:
        return None
    return {
        "type": ACTIVITY_TYPE_RENAMES.get(event["type"], event["type"]),
        "id": event["id"],
        "workspace_id": event["workspace_id"],
        "actor_id": event["actor_id"],
        "at": event["at"],
        "data": {"board_id": event["board_id"], "seq": event["seq"], "entity": event["entity"]},
    }


class BoardEventRelay:
    """A node component: publishes after commits; its sweep and prune run as scheduler jobs."""

    def __init__(self, ctx: AppContext) -> None:
        self.ctx = ctx
        # board id → "run again when done" (a commit arrived while that board was draining).
        self._draining: dict[str, bool] = {}
        self._tasks: set[asyncio.Task[None]] = set()

    async def start(self) -> None:
        return None

    async def stop(self) -> None:
        # In-flight publishes finish (bounded by the publish timeout); the rest is swept later.
        await self.wait_idle(timeout_s=5)

    async def wait_idle(self, timeout_s: float | None = None) -> None:
        """Until the publish runs started so far are done (shutdown, tests, ops)."""
        if self._tasks:
            await asyncio.wait(set(self._tasks), timeout=timeout_s)

    def notify(self, board_ids: set[str]) -> None:
        """Boards with newly committed events: publish them soon, one run per board at a time."""
        for board_id in board_ids:
            if board_id in self._draining:
                self._draining[board_id] = True
                continue
            self._draining[board_id] = False
            task = self.ctx.spawn(self._drain(board_id), name=f"board-relay-{board_id}")
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    async def _drain(self, board_id: str) -> None:
        try:
            while True:
                self._draining[board_id] = False
                more = await self.publish_pending(board_id)
                if not more and not self._draining[board_id]:
                    return
        except Unavailable as err:
            log.warning("board_relay.deferred", board_id=board_id, error=repr(err))
        finally:
            self._draining.pop(board_id, None)

    async def publish_pending(self, board_id: str) -> bool:
        """Publish one batch of the board's unpublished events in order; True if more remain."""
        rows = await events_repo.unpublished(self.ctx.db, board_id, RELAY_BATCH)
        done: list[int] = []
        try:
            for row in rows:
                await self._publish(row["payload"])
                done.append(row["seq"])
        finally:
            if done:
                await events_repo.mark_published(self.ctx.db, board_id, done)
        return len(rows) == RELAY_BATCH

    async def _publish(self, event: dict[str, Any]) -> None:
        board_id, seq = event["board_id"], event["seq"]
        try:
            await publish_event(
                self.ctx.nats,
                board_event_subject(board_id),
                _board_schema,
                event,
                board_msg_id(board_id, seq),
                headers={BOARD_SEQ_HEADER: str(seq)},
            )
            activity = activity_event(event)
            if activity is not None:
                await publish_event(
                    self.ctx.nats,
                    workspace_activity_subject(event["workspace_id"]),
                    _activity_schema,
                    activity,
                    activity_msg_id(board_id, seq),
                )
        except EventSchemaError as err:
            # Validated when it was recorded, so only a schema change can get here; holding the
            # board's queue forever would be worse than skipping one event loudly.
            log.error(
                "board_relay.invalid_event_skipped", board_id=board_id, seq=seq, error=str(err)
            )

    async def sweep(self, min_age_s: float = SWEEP_MIN_AGE_S) -> int:
        """Republish leftovers of every board (safe on several nodes at once); returns how many
        boards had some."""
        boards = await events_repo.boards_with_unpublished(
            self.ctx.db, min_age_s, SWEEP_BOARDS_PER_RUN
        )
        self.notify(set(boards))
        return len(boards)


async def sweep_job(ctx: AppContext) -> int:
    return await ctx.services["board_relay"].sweep()


async def prune_job(ctx: AppContext) -> int:
    """Drop published events past the retention (a `since` that old gets "refetch")."""
    pruned = await events_repo.prune(ctx.db, ctx.settings.board_event_retention_s)
    if pruned:
        log.info("board_relay.pruned", events=pruned)
    return pruned


def register_board_jobs(scheduler: Scheduler, ctx: AppContext) -> None:
    scheduler.register(SWEEP_JOB, sweep_job, SWEEP_INTERVAL_S)
    scheduler.register(PRUNE_JOB, prune_job, PRUNE_INTERVAL_S)
