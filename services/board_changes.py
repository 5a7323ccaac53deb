"""The unit of work of every board mutation: lock, change, record events, commit, then publish.

    async with board_change(ctx, [board_id], actor_id) as change:
        ...repository calls on change.conn...
        await change.emit(board_id, "card.updated", card_entity)

* Every change locks the board row(s) first (in id order, so two cross-board moves cannot
  deadlock). All writers of one board therefore run one after another: positions computed in the
  transaction cannot collide, and event sequence numbers are handed out in commit order.
* `emit` gives the event the board's next sequence number and writes it to `board_events` in the
  same transaction, so the sequence is durable and gapless: a rolled-back change leaves no event
  and no hole.
* After the commit (never before) the relay publishes the events to JetStream. A publish that
  fails leaves the rows unpublished; the relay retries them, in order, later (bus/board_relay.py).
"""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import asyncpg

from bus.events import EventSchemaError
from bus.schemas.board_events import BoardEventSchema
from core.errors import Conflict, NotFound
from models.repo import board_events as events_repo
from models.repo import boards as boards_repo

if TYPE_CHECKING:
    from server.context import AppContext

_event_schema = BoardEventSchema()


class StaleVersion(Conflict):
    """Optimistic concurrency: the client's version is not the current one. The body carries the
    current entity (`current`) so the client can merge and retry without another request."""

    code = "version_conflict"

    def __init__(self, kind: str, current: dict[str, Any]) -> None:
        super().__init__(
            f"the {kind} was changed by someone else (it is at version {current['version']})",
            headers={"ETag": f'"{current["version"]}"'},
        )
        self.current = current

    def to_body(self) -> dict[str, Any]:
        return {**super().to_body(), "current": self.current}


def check_version(kind: str, expected: int | None, current: dict[str, Any]) -> None:
    """No expectation = last writer wins (the client opted out); else it must match."""
    if expected is not None and expected != current["version"]:
        raise StaleVersion(kind, current)


@dataclass
class BoardChange:
    conn: asyncpg.Connection
    actor_id: str | None
    boards: dict[str, dict[str, Any]]
    events: list[dict[str, Any]] = field(default_factory=list)
    _next_seq: dict[str, int] = field(default_factory=dict)

    def board(self, board_id: str) -> dict[str, Any]:
        return self.boards[board_id]

    def next_seq(self, board_id: str) -> int:
        """The sequence number the next `emit` for this board will get (a board entity's
        `event_seq` is the sequence of the event that carries it)."""
        return self._next_seq.get(board_id, self.boards[board_id]["event_seq"]) + 1

    async def emit(self, board_id: str, event_type: str, entity: dict[str, Any]) -> dict[str, Any]:
        """Record one event of this change (validated now: a bad event rolls the change back)."""
        board = self.boards[board_id]
        seq = self.next_seq(board_id)
        self._next_seq[board_id] = seq
        event: dict[str, Any] = {
            "id": str(uuid.uuid4()),
            "type": event_type,
            "board_id": str(board_id),
            "workspace_id": str(board["workspace_id"]),
            "seq": seq,
            "actor_id": None if self.actor_id is None else str(self.actor_id),
            "at": datetime.now(UTC).isoformat(),
            "entity": entity,
        }
        errors = _event_schema.validate(event)
        if errors:
            raise EventSchemaError(f"{event_type} event violates its schema: {errors}")
        await events_repo.insert_event(
            self.conn, board_id, event["workspace_id"], seq, event_type, event
        )
        self.events.append(event)
        return event

    async def store_sequences(self) -> None:
        """Persist the boards' new sequence numbers (last step inside the transaction)."""
        for board_id, seq in self._next_seq.items():
            await boards_repo.set_event_seq(self.conn, board_id, seq)


@contextlib.asynccontextmanager
async def board_change(
    ctx: AppContext,
    board_ids: list[str],
    actor_id: str | None,
    *,
    allow_archived: bool = False,
) -> AsyncIterator[BoardChange]:
    """Lock the boards, run the change, commit, then hand the events to the relay."""
    async with ctx.db.transaction() as conn:
        locked: dict[str, dict[str, Any]] = {}
        for board_id in sorted({str(b) for b in board_ids}):
            board = await boards_repo.lock_board(conn, board_id)
            if board is None:
                raise NotFound("board not found")
            if board["archived"] and not allow_archived:
                raise Conflict("the board is archived (read-only)", code="board_archived")
            locked[board_id] = board
        change = BoardChange(conn, actor_id, locked)
        yield change
        await change.store_sequences()
    after_commit(ctx, change)


def after_commit(ctx: AppContext, change: BoardChange) -> None:
    """The change is committed: its events may now be published."""
    if change.events:
        ctx.services["board_relay"].notify({e["board_id"] for e in change.events})
