"""The unit of work: one Postgres transaction, the events it emits, and what runs after its commit.

    async with unit_of_work(deps) as uow:
        row = await repo.change_something(uow.conn, ...)
        await uow.emit(activity.event(workspace_id, "thing.changed", actor_id, {...}))
        uow.on_commit(lambda: permissions_cache.invalidate_user(deps, user_id, workspace_id))

Every action that emits an event (board, activity, user notification) goes through this, the way
Zulip's actions go through `send_event_on_commit`: `emit` checks the event against its schema and
stages it in the transaction (`bus/outbox.py`); after the commit, and never for a rolled-back
change, the `on_commit` callbacks run in order (cache invalidations: access changes first, so a
demoted user loses it before anyone reads about it) and then the outbox publishes the staged
events. Forgetting to publish is impossible: there is no separate publish call.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from typing import Protocol

import asyncpg

from bus.outbox import OutboundEvent, OutboxRelay, Staged, stage
from models.db import Database


class TransactionDeps(Protocol):
    """What a unit of work needs from the node: the pool and the outbox."""

    @property
    def db(self) -> Database: ...

    @property
    def outbox(self) -> OutboxRelay: ...


@dataclass
class UnitOfWork:
    conn: asyncpg.Connection
    staged: list[Staged] = field(default_factory=list)
    _on_commit: list[Callable[[], Awaitable[object]]] = field(default_factory=list)

    async def emit(self, event: OutboundEvent) -> None:
        """Check and stage one event (published after the commit; a bad event rolls back)."""
        self.staged.append(await stage(self.conn, event))

    def on_commit(self, callback: Callable[[], Awaitable[object]]) -> None:
        """Run `callback` after the commit, before the events are published."""
        self._on_commit.append(callback)


@contextlib.asynccontextmanager
async def unit_of_work(deps: TransactionDeps) -> AsyncIterator[UnitOfWork]:
    async with deps.db.transaction() as conn:
        uow = UnitOfWork(conn)
        yield uow
    for callback in uow._on_commit:
        await callback()
    await deps.outbox.publish_committed(uow.staged)
