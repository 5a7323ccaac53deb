"""The unit of work of every board mutation: lock, change, record events, commit, then publish.

    async with board_change(ctx, [board_id], actor_id) as change:
        ...repository calls on change.conn...
        await change.emit(board_id, "card.updated", card_entity)

A board change is a `services/unit_of_work.py` unit of work that first locks its boards and
numbers its events:

* Every change locks the board row(s) first (in id order, so two cross-board moves cannot
  deadlock). All writers of one board therefore run one after another: positions computed in the
  transaction cannot collide, and event sequence numbers are handed out in commit order.
* `emit` gives the event the board's next sequence number and writes it to `board_events` in the
  same transaction, so the sequence is durable and gapless: a rolled-back change leaves no event
  and no hole.
* Each board event's workspace activity copy is staged with it (`activity.board_copy`).
* After the commit (never before) the outbox publishes the events to JetStream, each board's in
  `seq` order. A publish that fails leaves the rows unpublished; the outbox relay job retries them,
  in order, later (`bus/outbox.py`).
"""

from __future__ import annotations

import contextlib
import dataclasses
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import asyncpg
import structlog
from marshmallow import Schema

from bus.outbox import board_event
from core.errors import Conflict, NotFound
from models.repo import board_events as events_repo
from models.repo import boards as boards_repo
from services import activity
from services.board_entities import Board, Versioned
from services.unit_of_work import TransactionDeps, UnitOfWork, unit_of_work

if TYPE_CHECKING:
    from services.deps import Deps

log = structlog.get_logger(__name__)


class StaleVersion(Conflict):
    """Optimistic concurrency: the client's version is not the current one. The body carries the
    current entity (`current`) so the client can merge and retry without another request."""

    code = "version_conflict"

    # `current` is the entity as its schema serialised it: open JSON, a part of the error body.
    def __init__(self, kind: str, current: dict[str, Any]) -> None:
        super().__init__(
            f"the {kind} was changed by someone else (it is at version {current['version']})",
            headers={"ETag": f'"{current["version"]}"'},
        )
        self.current = current

    def to_body(self) -> dict[str, Any]:
        return {**super().to_body(), "current": self.current}


def check_version(kind: str, expected: int | None, current: Versioned, schema: Schema) -> None:
    """No expectation = last writer wins (the client opted out); else it must match (the 409
    carries `current` as `schema` serialises it)."""
    if expected is not None and expected != current.version:
        raise StaleVersion(kind, schema.dump(current))


@dataclass(frozen=True)
class BoardEvent:
    """One board event: the envelope `bus/schemas/board_events.py` checks when it is emitted."""

    id: str
    type: str
    board_id: str
    workspace_id: str
    seq: int
    actor_id: str | None
    at: str
    # The changed board, list, card, label, member or rebalance as its entity schema serialised
    # it: JSON already (the schema the event's type names checks it again at emit).
    entity: dict[str, Any]

    def body(self) -> dict[str, Any]:
        """The event as the bus carries it (JSON)."""
        return dataclasses.asdict(self)


@dataclass
class BoardChange:
    uow: UnitOfWork
    actor_id: str | None
    boards: dict[str, Board]
    _next_seq: dict[str, int] = field(default_factory=dict)

    @property
    def conn(self) -> asyncpg.Connection:
        return self.uow.conn

    def board(self, board_id: str) -> Board:
        return self.boards[board_id]

    def next_seq(self, board_id: str) -> int:
        """The sequence number the next `emit` for this board will get (a board entity's
        `event_seq` is the sequence of the event that carries it)."""
        return self._next_seq.get(board_id, self.boards[board_id].event_seq) + 1

    async def emit(self, board_id: str, event_type: str, entity: dict[str, Any]) -> None:
        """Record one event of this change (validated now: a bad event rolls the change back);
        `entity`: the changed object as its entity schema serialised it."""
        board = self.boards[board_id]
        seq = self.next_seq(board_id)
        self._next_seq[board_id] = seq
        event = BoardEvent(
            id=str(uuid.uuid4()),
            type=event_type,
            board_id=str(board_id),
            workspace_id=str(board.workspace_id),
            seq=seq,
            actor_id=None if self.actor_id is None else str(self.actor_id),
            at=datetime.now(UTC).isoformat(),
            entity=entity,
        )
        await self.uow.emit(board_event(event.body()))
        copy = activity.board_copy(event)
        if copy is not None:
            await self.uow.emit(copy)

    async def store_sequences(self) -> None:
        """Persist the boards' new sequence numbers (last step inside the transaction)."""
        for board_id, seq in self._next_seq.items():
            await boards_repo.set_event_seq(self.conn, board_id, seq)


@contextlib.asynccontextmanager
async def board_change(
    deps: TransactionDeps,
    board_ids: list[str],
    actor_id: str | None,
    *,
    allow_archived: bool = False,
) -> AsyncIterator[BoardChange]:
    """Lock the boards, run the change, commit, then have the outbox publish its events."""
    async with unit_of_work(deps) as uow:
        locked: dict[str, Board] = {}
        for board_id in sorted({str(b) for b in board_ids}):
            board = await boards_repo.lock_board(uow.conn, board_id)
            if board is None:
                raise NotFound("board not found")
            if board["archived"] and not allow_archived:
                raise Conflict("the board is archived (read-only)", code="board_archived")
            locked[board_id] = Board.from_row(board)
        change = BoardChange(uow, actor_id, locked)
        yield change
        await change.store_sequences()


BOARD_EVENTS_PRUNE_JOB = "board_events_prune"
BOARD_EVENTS_PRUNE_INTERVAL_S = 3600.0


async def prune_board_events(ctx: Deps) -> int:
    """Drop published board events past the retention (a `since` that old gets "refetch")."""
    pruned = await events_repo.prune(ctx.db, ctx.settings.board_event_retention_s)
    if pruned:
        log.info("board_relay.pruned", events=pruned)
    return pruned
