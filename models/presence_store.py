"""Who is connected to a resource, in Redis: one hash per resource, one field per connection.

Each value carries its own `expires_at`: nodes re-write their connections as a heartbeat, and a
node that dies without cleaning up leaves entries that simply stop being live after the TTL (the
hash as a whole also expires when nobody renews it). Redis is a cache here: every call may raise
`CacheUnavailable`, and callers decide whether that is an error (REST) or ignored (sockets).
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterable
from typing import Any

import redis.asyncio as redis_asyncio

from models.cache import Cache


class PresenceHash:
    def __init__(self, cache: Cache, ttl_s: int, prefix: str) -> None:
        self.cache = cache
        self.ttl_s = ttl_s
        self.prefix = prefix

    def key(self, resource_id: str) -> str:
        return f"{self.prefix}:{resource_id}"

    async def put(self, entries: Iterable[tuple[str, str, dict[str, Any]]]) -> None:
        """Write or renew `(resource_id, conn_id, value)` entries in one round trip."""
        entries = list(entries)
        if not entries:
            return
        expires_at = time.time() + self.ttl_s

        async def write(r: redis_asyncio.Redis) -> None:
            async with r.pipeline(transaction=False) as pipe:
                for resource_id, conn_id, value in entries:
                    key = self.key(resource_id)
                    pipe.hset(key, conn_id, json.dumps({**value, "expires_at": expires_at}))
                    pipe.expire(key, self.ttl_s)
                await pipe.execute()

        await self.cache.run(write)

    async def remove(self, resource_id: str, conn_id: str) -> None:
        await self.cache.run(lambda r: r.hdel(self.key(resource_id), conn_id))

    async def live(self, resource_id: str) -> tuple[list[dict[str, Any]], list[bytes | str]]:
        """The live entries (without `expires_at`) and the fields of expired ones."""
        raw = await self.cache.run(lambda r: r.hgetall(self.key(resource_id)))
        now = time.time()
        live: list[dict[str, Any]] = []
        expired: list[bytes | str] = []
        for field, value in raw.items():
            entry = json.loads(value)
            if entry.pop("expires_at") < now:
                expired.append(field)
            else:
                live.append(entry)
        return live, expired

    async def prune(self, resource_id: str, fields: list[bytes | str]) -> None:
        if fields:
            await self.cache.run(lambda r: r.hdel(self.key(resource_id), *fields))


async def prune_expired(
    cache: Cache, match: str, cursor: int, max_keys: int
) -> tuple[int, int, int]:
    """Sweep presence hashes matching `match` from SCAN `cursor`: remove entries past their
    `expires_at` (a node that died without cleaning up) until about `max_keys` keys were looked
    at. Returns (next cursor, 0 when the keyspace is done; keys looked at; entries removed)."""
    now = time.time()
    seen = removed = 0

    async def sweep_page(r: redis_asyncio.Redis) -> tuple[int, int, int]:
        """One SCAN page: (next cursor, keys on it, entries removed)."""
        next_cursor, keys = await r.scan(cursor, match=match, count=200)
        page_removed = 0
        for key in keys:
            raw = await r.hgetall(key)
            stale = [f for f, v in raw.items() if _expires_at(v) < now]
            if stale:
                page_removed += int(await r.hdel(key, *stale))
        return int(next_cursor), len(keys), page_removed

    while True:
        cursor, page_keys, page_removed = await cache.run(sweep_page)
        seen += page_keys
        removed += page_removed
        if cursor == 0 or seen >= max_keys:
            return cursor, seen, removed


def _expires_at(value: bytes | str) -> float:
    try:
        return float(json.loads(value).get("expires_at", 0))
    except (ValueError, AttributeError):
        return 0.0  # unreadable: nobody can use it either
