"""What the domain layer is handed by the node: small `Protocol`s, not the node itself.

Services, jobs and the live layer type their dependency as one of these; `server.context` builds
the node (`AppContext`) that satisfies them, and the ops commands build a smaller one
(`ops/_runtime.py`) that satisfies the ones they need. Nothing here imports the layers above, so
a service cannot reach for a component (rooms, socket feeds, the scheduler) it was not given.
"""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from typing import TYPE_CHECKING, Any, Protocol

from bus.connection import NatsConnection
from bus.doc_log import DocLog
from bus.outbox import OutboxRelay
from models.cache import Cache
from models.db import Database
from server.settings import Settings
from services.projection_worker import ProjectionWorker

if TYPE_CHECKING:
    from services.denylist import Denylist


class ClientDeps(Protocol):
    """The two clients every layer below the node is handed."""

    @property
    def settings(self) -> Settings: ...

    @property
    def db(self) -> Database: ...

    @property
    def nats(self) -> NatsConnection: ...


class SnapshotDeps(ClientDeps, Protocol):
    """The document log and its compaction bookkeeping: snapshots, the snapshot job, ops; the
    worker process the projection of a state is computed in."""

    @property
    def doc_log(self) -> DocLog: ...

    @property
    def projection_worker(self) -> ProjectionWorker: ...


class RevocationDeps(ClientDeps, Protocol):
    """What revoking sessions needs (the denylist copy, the signal): the node, or the `collab
    users` command's smaller context (no document log, no outbox)."""

    @property
    def cache(self) -> Cache: ...

    def spawn(self, coro: Coroutine[Any, Any, Any], *, name: str) -> asyncio.Task[Any]:
        """Run a background task owned (and awaited at shutdown) by the node."""
        ...


class Deps(SnapshotDeps, RevocationDeps, Protocol):
    """Everything a domain action may use: the clients, the outbox and background tasks."""

    @property
    def node_id(self) -> str: ...

    @property
    def outbox(self) -> OutboxRelay: ...

    @property
    def denylist(self) -> Denylist: ...
