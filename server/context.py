"""Everything one node holds: settings, backing-service clients and long-lived components.

A node is stateless: what lives here is connections and caches that can be rebuilt. Components
(document rooms, schedulers, event listeners) register with `add_component` and get an explicit
`start()`/`stop()`; shutdown runs in reverse order so nothing talks to a closed client.
"""

from __future__ import annotations

import asyncio
from typing import Any, Protocol

import structlog

from bus.connection import NatsConnection
from models.cache import Cache
from models.db import Database
from server.settings import Settings

log = structlog.get_logger(__name__)


class Component(Protocol):
    async def start(self) -> None: ...

    async def stop(self) -> None: ...


class AppContext:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.node_id = settings.node_id
        self.db = Database(
            settings.database_url,
            min_size=settings.db_pool_min,
            max_size=settings.db_pool_max,
            command_timeout_s=settings.db_command_timeout_s,
        )
        self.cache = Cache(
            settings.redis_url,
            timeout_s=settings.redis_timeout_s,
            pool_max=settings.redis_pool_max,
            client_name=f"collab:{settings.node_id}",
        )
        self.nats = NatsConnection(settings)
        self.components: list[Component] = []
        self.services: dict[str, Any] = {}
        self._background: set[asyncio.Task[Any]] = set()
        self.draining = False

    def add_component(self, component: Component) -> None:
        self.components.append(component)

    def spawn(self, coro: Any, *, name: str) -> asyncio.Task[Any]:
        """Run a background task that is neither garbage-collected nor leaked at shutdown."""
        task = asyncio.create_task(coro, name=name)
        self._background.add(task)
        task.add_done_callback(self._task_done)
        return task

    def _task_done(self, task: asyncio.Task[Any]) -> None:
        self._background.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.error("background_task.failed", task=task.get_name(), error=repr(task.exception()))

    async def start(self) -> None:
        await self.db.start()
        await self.nats.start()
        for component in self.components:
            await component.start()

    async def stop(self) -> None:
        self.draining = True
        for component in reversed(self.components):
            try:
                await component.stop()
            except Exception as err:
                log.error(
                    "component.stop_failed", component=type(component).__name__, error=repr(err)
                )
        if self._background:
            for task in list(self._background):
                task.cancel()
            await asyncio.gather(*self._background, return_exceptions=True)
        await self.nats.stop()
        await self.cache.close()
        await self.db.stop()
