"""The async data-access entry point: one asyncpg pool per node.

Every query on a request path goes through `Database`, which turns "Postgres is unreachable" into
`Unavailable` (HTTP 503 / WS 1013) quickly instead of hanging: connection attempts and commands have
timeouts. jsonb columns are decoded to Python objects.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator
from typing import Any, TypeAlias

import asyncpg

from core.errors import Unavailable
from server.settings import Settings

# asyncpg raises these (or OSError) when the server is down, restarting or the pool lost a link.
_UNAVAILABLE = (
    OSError,
    asyncio.TimeoutError,
    asyncpg.exceptions.ConnectionDoesNotExistError,
    asyncpg.exceptions.CannotConnectNowError,
    asyncpg.exceptions.AdminShutdownError,
    asyncpg.exceptions.InterfaceError,
    asyncpg.exceptions.TooManyConnectionsError,
)
CONNECT_TIMEOUT_S = 3.0
ACQUIRE_TIMEOUT_S = 5.0


async def _init_connection(conn: asyncpg.Connection) -> None:
    for name in ("json", "jsonb"):
        await conn.set_type_codec(name, encoder=json.dumps, decoder=json.loads, schema="pg_catalog")


class Database:
    """Thin wrapper over an asyncpg pool with uniform outage handling."""

    def __init__(self, url: str, *, min_size: int, max_size: int, command_timeout_s: float):
        self.url = url
        self._min = min_size
        self._max = max_size
        self._command_timeout = command_timeout_s
        self._pool: asyncpg.Pool | None = None

    @classmethod
    def from_settings(cls, settings: Settings) -> Database:
        return cls(
            settings.database_url,
            min_size=settings.db_pool_min,
            max_size=settings.db_pool_max,
            command_timeout_s=settings.db_command_timeout_s,
        )

    async def start(self) -> None:
        try:
            self._pool = await asyncpg.create_pool(
                self.url,
                min_size=self._min,
                max_size=self._max,
                command_timeout=self._command_timeout,
                timeout=CONNECT_TIMEOUT_S,
                init=_init_connection,
            )
        except _UNAVAILABLE as err:
            raise Unavailable("database unavailable") from err

    async def stop(self) -> None:
        if self._pool is not None:
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(self._pool.close(), 5)
            self._pool = None

    @property
    def pool(self) -> asyncpg.Pool:
        if self._pool is None:
            raise Unavailable("database not connected")
        return self._pool

    @contextlib.asynccontextmanager
    async def connection(self) -> AsyncIterator[asyncpg.Connection]:
        """A pooled connection; outages surface as `Unavailable`."""
        try:
            async with self.pool.acquire(timeout=ACQUIRE_TIMEOUT_S) as conn:
                yield conn
        except _UNAVAILABLE as err:
            raise Unavailable("database unavailable") from err

    @contextlib.asynccontextmanager
    async def transaction(self) -> AsyncIterator[asyncpg.Connection]:
        async with self.connection() as conn, conn.transaction():
            yield conn

    async def fetch(self, sql: str, *args: Any) -> list[asyncpg.Record]:
        async with self.connection() as conn:
            return await conn.fetch(sql, *args)

    async def fetchrow(self, sql: str, *args: Any) -> asyncpg.Record | None:
        async with self.connection() as conn:
            return await conn.fetchrow(sql, *args)

    async def fetchval(self, sql: str, *args: Any) -> Any:
        async with self.connection() as conn:
            return await conn.fetchval(sql, *args)

    async def execute(self, sql: str, *args: Any) -> str:
        async with self.connection() as conn:
            return await conn.execute(sql, *args)

    async def ping(self) -> bool:
        try:
            return await self.fetchval("SELECT 1") == 1
        except Unavailable:
            return False


# What a data-access function runs its SQL on: the pool (one statement, autocommit) or a connection
# inside the caller's transaction.
Executor: TypeAlias = Database | asyncpg.Connection
