"""Who is online in a document, for `GET /api/v1/documents/{id}/presence/` (Redis, a cache).

One Redis hash per document: field = connection id, value = JSON {user_id, display_name, node,
since, expires_at}. Each node re-writes its own connections' fields every `presence_ttl_s / 3` with a
fresh `expires_at`, so the entries of a node that died stop counting at most `presence_ttl_s` later
(readers skip and prune expired fields; Redis has no per-field TTL before 7.4). Redis down: editing
goes on, the endpoint answers 503 `presence_unavailable`.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from typing import Any

import redis.asyncio as redis_asyncio
import structlog

from models.cache import Cache, CacheUnavailable
from services.errors import Unavailable

log = structlog.get_logger(__name__)


class PresenceUnavailable(Unavailable):
    code = "presence_unavailable"


@dataclass(frozen=True)
class PresenceEntry:
    doc_id: str
    conn_id: str
    user_id: str
    display_name: str
    node: str
    since: float
    kind: str


def presence_key(doc_id: str) -> str:
    return f"presence:doc:{doc_id}"


class PresenceService:
    def __init__(self, cache: Cache, ttl_s: int) -> None:
        self.cache = cache
        self.ttl_s = ttl_s

    async def add(self, entries: Iterable[PresenceEntry]) -> None:
        """Write (or re-write, as a heartbeat) connections. Raises CacheUnavailable."""
        entries = list(entries)
        if not entries:
            return
        expires_at = time.time() + self.ttl_s

        async def write(r: redis_asyncio.Redis) -> None:
            async with r.pipeline(transaction=False) as pipe:
                for entry in entries:
                    value = {**asdict(entry), "expires_at": expires_at}
                    pipe.hset(presence_key(entry.doc_id), entry.conn_id, json.dumps(value))
                    pipe.expire(presence_key(entry.doc_id), self.ttl_s)
                await pipe.execute()

        await self.cache.run(write)

    async def remove(self, doc_id: str, conn_id: str) -> None:
        await self.cache.run(lambda r: r.hdel(presence_key(doc_id), conn_id))

    async def online(self, doc_id: str) -> list[dict[str, Any]]:
        """Users with at least one live connection, oldest first."""
        try:
            raw = await self.cache.run(lambda r: r.hgetall(presence_key(doc_id)))
        except CacheUnavailable as err:
            raise PresenceUnavailable("presence is unavailable right now") from err
        now = time.time()
        users: dict[str, dict[str, Any]] = {}
        expired: list[bytes | str] = []
        for field, value in raw.items():
            entry = json.loads(value)
            if entry["expires_at"] < now:
                expired.append(field)
                continue
            user = users.setdefault(
                entry["user_id"],
                {
                    "user_id": entry["user_id"],
                    "display_name": entry["display_name"],
                    "since": entry["since"],
                    "connections": 0,
                },
            )
            user["connections"] += 1
            user["since"] = min(user["since"], entry["since"])
        if expired:
            await self._prune(doc_id, expired)
        return sorted(users.values(), key=lambda u: u["since"])

    async def _prune(self, doc_id: str, fields: list[bytes | str]) -> None:
        try:
            await self.cache.run(lambda r: r.hdel(presence_key(doc_id), *fields))
        except CacheUnavailable as err:
            log.info("presence.prune_failed", doc_id=doc_id, error=str(err))
