"""Board presence: who is viewing a board and which card each of them has open.

Changes travel on core NATS (`collab.board.<id>.presence`, ephemeral by design: a lost presence
message is corrected by the next one and never matters after a restart), so every node can pass
them to its sockets. The "who is here now" list a joining socket receives is kept in Redis: one
hash per board, field = connection id, value = JSON with an `expires_at` that each node renews for
its own connections every `ttl / 3` (Redis has no per-field TTL before 7.4), so the entries of a
node that died stop counting within `ttl`. Redis down: presence degrades (an empty list marked
`stale`), the board socket keeps working.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from typing import Any, Literal

import redis.asyncio as redis_asyncio
import structlog

from models.cache import Cache, CacheUnavailable

log = structlog.get_logger(__name__)

PresenceState = Literal["viewing", "left"]


def presence_subject(board_id: str) -> str:
    return f"collab.board.{board_id}.presence"


def presence_key(board_id: str) -> str:
    return f"presence:board:{board_id}"


@dataclass(frozen=True)
class BoardPresence:
    """One connection's presence; also the wire form (plus `type` and `state`)."""

    board_id: str
    conn_id: str
    user_id: str
    display_name: str
    card_id: str | None
    node: str

    def message(self, state: PresenceState) -> dict[str, Any]:
        return {"type": "presence", "state": state, **asdict(self), "at": time.time()}


class PresenceStore:
    """The Redis list of current viewers (a cache: every call may raise CacheUnavailable)."""

    def __init__(self, cache: Cache, ttl_s: int) -> None:
        self.cache = cache
        self.ttl_s = ttl_s

    async def put(self, entries: Iterable[BoardPresence]) -> None:
        entries = list(entries)
        if not entries:
            return
        expires_at = time.time() + self.ttl_s

        async def write(r: redis_asyncio.Redis) -> None:
            async with r.pipeline(transaction=False) as pipe:
                for entry in entries:
                    value = json.dumps({**asdict(entry), "expires_at": expires_at})
                    pipe.hset(presence_key(entry.board_id), entry.conn_id, value)
                    pipe.expire(presence_key(entry.board_id), self.ttl_s)
                await pipe.execute()

        await self.cache.run(write)

    async def remove(self, board_id: str, conn_id: str) -> None:
        await self.cache.run(lambda r: r.hdel(presence_key(board_id), conn_id))

    async def current(self, board_id: str) -> list[dict[str, Any]]:
        """Live entries in a stable order (expired ones are skipped)."""
        raw = await self.cache.run(lambda r: r.hgetall(presence_key(board_id)))
        now = time.time()
        entries = [json.loads(value) for value in raw.values()]
        live = [e for e in entries if e.pop("expires_at") >= now]
        return sorted(live, key=lambda e: e["conn_id"])


async def safely(coro: Any, what: str) -> Any:
    """Presence is best effort: a Redis outage is logged, never raised into the socket."""
    try:
        return await coro
    except CacheUnavailable as err:
        log.info("board_presence.unavailable", what=what, error=str(err))
        return None
