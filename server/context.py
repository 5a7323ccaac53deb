"""Everything one node holds, as typed attributes: settings, backing-service clients, components.

`AppContext.__init__` is the one place a node is wired: the clients first (Postgres, Redis, NATS),
then what is built on them (the outbox, the document log, the denylist, auth, the board and
inbox feeds, the projection refresher, the document rooms and their probe, the scheduler, the
projection worker) — each handed the context as the small `Protocol` it declares
(`services/deps.py`), never looked up by name.
`server.app.build_context` adds the job list and the OpenAPI document. A node is stateless: what
lives here is connections and caches that can be rebuilt. Components register with
`add_component` and get an explicit `start()`/`stop()`; shutdown runs in reverse order so nothing
talks to a closed client.
"""

from __future__ import annotations

import asyncio
from typing import Any, Protocol

import structlog

from bus.connection import NatsConnection
from bus.doc_log import DocLog, signing_key
from bus.outbox import OutboxRelay
from live.admission import Admission, SocketCaps
from live.board_feed import BoardFeed
from live.inbox_feed import InboxFeed
from live.pinger import SocketPinger
from live.rooms import RoomManager
from models.cache import Cache
from models.db import Database
from server.metrics import watch_node
from server.room_probe import RoomProbe
from server.scheduler import Scheduler
from server.settings import Settings
from services.auth import AuthService
from services.denylist import Denylist
from services.presence import PresenceService
from services.projection_refresher import ProjectionRefresher
from services.projection_worker import ProjectionWorker
from services.ratelimit import RateLimiter
from services.search import SearchIndex

log = structlog.get_logger(__name__)


class Component(Protocol):
    async def start(self) -> None: ...

    async def stop(self) -> None: ...


class AppContext:
    def __init__(self, settings: Settings, *, openapi: dict[str, Any] | None = None) -> None:
        self.settings = settings
        self.node_id = settings.node_id
        self.db = Database.from_settings(settings)
        self.cache = Cache(
            settings.redis_url,
            timeout_s=settings.redis_timeout_s,
            pool_max=settings.redis_pool_max,
            client_name=f"collab:{settings.node_id}",
        )
        self.nats = NatsConnection(settings)
        self.components: list[Component] = []
        self._background: set[asyncio.Task[Any]] = set()
        self.draining = False
        # The socket caps of this node, every socket kind counted together (live/admission.py).
        self.admission = Admission(SocketCaps.from_settings(settings))
        # Keep-alive pings of every socket kind, one task for the node (live/pinger.py).
        self.pinger = SocketPinger(settings.websocket_ping_interval_s)
        self.add_component(self.pinger)
        # The after-commit outbox: every unit of work hands its events to it (bus/outbox.py).
        self.outbox = OutboxRelay(self.db, self.nats, self.spawn)
        self.add_component(self.outbox)
        self.doc_log = DocLog(self.nats, self.node_id, signing_key(settings.jwt_secret))
        self.denylist = Denylist(self)
        # Per-user rate limits of domain actions (comments); Redis-backed, local when it is down.
        self.limiter = RateLimiter(self.cache)
        self.auth = AuthService(self)
        self.add_component(self.auth.passwords)
        self.board_feed = BoardFeed(self)
        self.add_component(self.board_feed)
        self.inbox_feed = InboxFeed(self)
        self.add_component(self.inbox_feed)
        self.add_component(SearchIndex(self))
        self.rooms = RoomManager(self)
        # Refreshes take the entries after their last state from the rooms when they hold them.
        self.add_component(ProjectionRefresher(self, recent=self.rooms.recent_entries))
        self.presence: PresenceService = self.rooms.presence
        self.add_component(self.rooms)
        self.add_component(RoomProbe(self, self.rooms))
        watch_node(lambda: len(self.rooms.rooms))
        # Started last, stopped first: no job runs against components that are shutting down.
        self.scheduler: Scheduler[AppContext] = Scheduler(self)
        self.add_component(self.scheduler)
        # The projection's CPU work runs in a worker process (services/projection_worker.py).
        # Stopped before everything else: it kills a long refresh at once, so neither the
        # scheduler (which waits for its running jobs) nor SIGTERM waits for one.
        self.projection_worker = ProjectionWorker(settings)
        self.add_component(self.projection_worker)
        self.openapi: dict[str, Any] = openapi or {}

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
