"""The node's NATS connection.

nats-py gives up reconnecting after 60 attempts by default (~2 min); a server must never end up
permanently CLOSED, so reconnects are unlimited. Reconnects re-verify the streams (a restarted
nats-server with a wiped store would otherwise silently lose them) and notify listeners (rooms
re-subscribe their consumers).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable

import nats
import nats.errors
import nats.js.errors
import structlog
from nats.js import JetStreamContext

from bus.jetstream import ensure_streams
from bus.nats_client import Client as NATS
from server.settings import Settings

log = structlog.get_logger(__name__)

RECONNECT_WAIT_S = 1
CONNECT_TIMEOUT_S = 3
JS_TIMEOUT_S = 5.0
# Start-up waits this long for JetStream to accept the stream definitions (a cluster electing its
# leaders after a full restart takes seconds), retrying every STREAMS_RETRY_S.
STREAMS_READY_TIMEOUT_S = 120.0
STREAMS_RETRY_S = 1.0
Listener = Callable[[], Awaitable[None]]


class NatsConnection:
    """Owns the client, the JetStream context and reconnect bookkeeping."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.nc: NATS = NATS()
        self.js: JetStreamContext | None = None
        self.slow_consumer_errors = 0
        self._reconnect_listeners: list[Listener] = []
        self._tasks: set[asyncio.Task[None]] = set()
        self._stopping = False

    def on_reconnect(self, listener: Listener) -> None:
        self._reconnect_listeners.append(listener)

    def servers(self) -> list[str]:
        return [s.strip() for s in self.settings.nats_url.split(",")]

    async def start(self) -> None:
        await self.nc.connect(
            servers=self.servers(),
            name=f"collab-{self.settings.node_id}",
            max_reconnect_attempts=-1,
            reconnect_time_wait=RECONNECT_WAIT_S,
            connect_timeout=CONNECT_TIMEOUT_S,
            allow_reconnect=True,
            error_cb=self._on_error,
            disconnected_cb=self._on_disconnected,
            reconnected_cb=self._on_reconnected,
            closed_cb=self._on_closed,
        )
        self.js = self.nc.jetstream(timeout=JS_TIMEOUT_S)
        await self._ensure_streams_at_start()

    async def _ensure_streams_at_start(self) -> None:
        """Create/verify the streams, waiting out a JetStream that is not ready yet.

        A cluster that is still electing its meta leader (all servers just started, or a quorum
        just lost) answers "temporarily unavailable" or not at all, and creating an R3 stream on
        a busy cluster can take longer than one API timeout; a node that exited on that would make
        a fresh deployment's start a race (found by tests/test_nats_cluster.py).
        """
        deadline = time.monotonic() + STREAMS_READY_TIMEOUT_S
        while True:
            try:
                await ensure_streams(self.jetstream, self.settings)
                return
            except (
                nats.errors.TimeoutError,
                nats.errors.NoRespondersError,
                nats.js.errors.ServiceUnavailableError,
            ) as err:
                if time.monotonic() >= deadline:
                    raise
                log.warning("nats.streams_not_ready", error=repr(err))
                await asyncio.sleep(STREAMS_RETRY_S)

    async def start_for_tool(self, name: str, *, reconnect_attempts: int = 2) -> None:
        """Connect a short-lived tool (ops commands): never `ensure_streams` — an operator's
        shell may lack the nodes' stream-limit settings, and a tool must not rewrite a stream's
        config — and few reconnects, so an outage is an error, not a hang."""
        await self.nc.connect(
            servers=self.servers(),
            name=name,
            connect_timeout=CONNECT_TIMEOUT_S,
            max_reconnect_attempts=reconnect_attempts,
        )
        self.js = self.nc.jetstream(timeout=JS_TIMEOUT_S)

    async def stop(self) -> None:
        self._stopping = True
        if self.nc.is_connected or self.nc.is_reconnecting:
            try:
                await asyncio.wait_for(self.nc.drain(), 5)
            except (TimeoutError, nats.errors.Error):
                await self.nc.close()
        for task in list(self._tasks):
            task.cancel()

    @property
    def jetstream(self) -> JetStreamContext:
        assert self.js is not None, "NatsConnection.start() not called"
        return self.js

    async def _on_error(self, err: Exception) -> None:
        if isinstance(err, nats.errors.SlowConsumerError):
            self.slow_consumer_errors += 1
        log.warning("nats.error", error=repr(err))

    async def _on_disconnected(self) -> None:
        # Expected during shutdown; an unexpected disconnect is worth a warning.
        (log.info if self._stopping else log.warning)("nats.disconnected")

    async def _on_closed(self) -> None:
        (log.info if self._stopping else log.warning)("nats.closed")

    async def _on_reconnected(self) -> None:
        log.info("nats.reconnected", server=str(self.nc.connected_url))
        task = asyncio.create_task(self._after_reconnect())
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _after_reconnect(self) -> None:
        try:
            await ensure_streams(self.jetstream, self.settings)
            log.info("nats.streams_verified")
        except Exception as err:  # reconnect storms: log and let the next reconnect retry
            log.error("nats.streams_verify_failed", error=repr(err))
        for listener in self._reconnect_listeners:
            try:
                await listener()
            except Exception as err:
                log.error("nats.reconnect_listener_failed", error=repr(err))

    async def ready(self) -> bool:
        """JetStream answers an API call (not just a TCP connection)."""
        if not self.nc.is_connected or self.js is None:
            return False
        try:
            await asyncio.wait_for(self.js.account_info(), 2)
            return True
        except (TimeoutError, nats.errors.Error, nats.js.errors.Error):
            return False
