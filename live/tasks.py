"""Background tasks of one owner (a room, an awareness relay): kept in a set so they are neither
garbage-collected mid-flight nor leaked, awaited when the owner stops, failures logged."""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from typing import Any

import structlog

log = structlog.get_logger(__name__)


class TaskSet:
    def __init__(self, doc_id: str) -> None:
        self.doc_id = doc_id
        self._tasks: set[asyncio.Task[Any]] = set()

    def spawn(self, coro: Coroutine[Any, Any, Any]) -> None:
        task = asyncio.create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._done)

    def _done(self, task: asyncio.Task[Any]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.warning("room.task_failed", doc_id=self.doc_id, error=repr(task.exception()))

    async def wait(self) -> None:
        """Let the tasks under way finish (their failures are logged, not raised)."""
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)
