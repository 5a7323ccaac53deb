"""Redis access with bounded latency.

Redis is a cache here (presence, permission cache, rate limits, denylist copy): it is never the only
copy of anything. redis-py's own retries can stall a call for seconds when Redis is down or
blackholed, so every call has a hard timeout and a circuit breaker: after a failure we skip Redis for
`BREAKER_OPEN_S` and callers take their documented fallback at once.
"""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import Awaitable, Callable
from typing import TypeVar

import redis.asyncio as redis_asyncio
from redis.exceptions import RedisError

T = TypeVar("T")
BREAKER_OPEN_S = 2.0
_RUN_ID = re.compile(r"^run_id:(\w+)", re.MULTILINE)


class CacheUnavailable(Exception):
    """Redis did not answer in time; callers fall back (fail soft or fail closed, per feature)."""


class Cache:
    """One process' Redis client: at most `pool_max` connections, shared by every caller.

    redis-py's default pool opens a new connection for every concurrent call (a burst of 100
    handshakes opened 100); the blocking pool makes callers wait for a free one instead, within
    the same `timeout_s` as any other Redis call. Connections carry `client_name` so an operator's
    `CLIENT LIST` shows which node holds them.

    `url` empty: no Redis configured (the ops commands, which never need it); every call
    raises `CacheUnavailable` and callers take their fallback, as when Redis is down.
    """

    def __init__(
        self, url: str, *, timeout_s: float, pool_max: int, client_name: str | None = None
    ) -> None:
        self.timeout_s = timeout_s
        self.client: redis_asyncio.Redis | None = None
        self._open_until = 0.0
        # The `run_id` of the Redis process behind the newest connection (None: not connected yet).
        self.server_run_id: str | None = None
        if not url:
            return
        pool = redis_asyncio.BlockingConnectionPool.from_url(
            url,
            max_connections=pool_max,
            timeout=timeout_s,
            client_name=client_name,
            socket_timeout=timeout_s,
            socket_connect_timeout=timeout_s,
            retry_on_timeout=False,
            retry=None,
            health_check_interval=0,
            decode_responses=False,
            redis_connect_func=self._on_connect,
        )
        self.client = redis_asyncio.Redis.from_pool(pool)

    async def _on_connect(self, conn: redis_asyncio.connection.AbstractConnection) -> None:
        """Every new connection learns the server's `run_id`, which is new after each restart
        or failover: what the previous process held (and acknowledged) may be missing from what
        the new one loaded, and features that need completeness (the denylist) compare it."""
        await conn.on_connect()
        await conn.send_command("INFO", "server")
        info = await conn.read_response()
        text = info.decode() if isinstance(info, bytes) else str(info)
        found = _RUN_ID.search(text)
        self.server_run_id = found.group(1) if found else None

    async def run(self, op: Callable[[redis_asyncio.Redis], Awaitable[T]]) -> T:
        """Run one Redis operation or raise `CacheUnavailable` within `timeout_s`."""
        client = self.client
        if client is None:
            raise CacheUnavailable("redis not configured")
        if time.monotonic() < self._open_until:
            raise CacheUnavailable("redis circuit open")
        try:
            return await asyncio.wait_for(op(client), self.timeout_s)
        except (TimeoutError, RedisError, OSError) as err:
            self._open_until = time.monotonic() + BREAKER_OPEN_S
            raise CacheUnavailable(f"redis unavailable: {type(err).__name__}") from err

    async def ping(self) -> bool:
        try:
            return bool(await self.run(lambda r: r.ping()))
        except CacheUnavailable:
            return False

    async def close(self) -> None:
        if self.client is not None:
            await self.client.aclose()
