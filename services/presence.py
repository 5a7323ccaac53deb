"""Who is online in a document, for `GET /api/v1/documents/{id}/presence/` (Redis, a cache).

One Redis hash per document: field = connection id, value = JSON {user_id, display_name, node,
since, expires_at}. Each node re-writes its own connections' fields every `presence_ttl_s / 3` with a
fresh `expires_at`, so the entries of a node that died stop counting at most `presence_ttl_s` later
(readers skip and prune expired fields; Redis has no per-field TTL before 7.4). Redis down: editing
goes on, the endpoint answers 503 `presence_unavailable`.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import asdict, dataclass

import structlog

from core.errors import Unavailable
from models.cache import Cache, CacheUnavailable
from models.presence_store import PresenceHash

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


PRESENCE_PREFIX = "presence:doc"


@dataclass(frozen=True)
class OnlineUser:
    """A user on a document: the oldest of their live connections (epoch seconds) and how many."""

    user_id: str
    display_name: str
    since: float
    connections: int


class PresenceService:
    def __init__(self, cache: Cache, ttl_s: int) -> None:
        self.store = PresenceHash(cache, ttl_s, PRESENCE_PREFIX)

    async def add(self, entries: Iterable[PresenceEntry]) -> None:
        """Write (or re-write, as a heartbeat) connections. Raises CacheUnavailable."""
        await self.store.put((e.doc_id, e.conn_id, asdict(e)) for e in entries)

    async def remove(self, doc_id: str, conn_id: str) -> None:
        await self.store.remove(doc_id, conn_id)

    async def online(self, doc_id: str) -> list[OnlineUser]:
        """Users with at least one live connection, oldest first."""
        try:
            live, expired = await self.store.live(doc_id)
        except CacheUnavailable as err:
            raise PresenceUnavailable("presence is unavailable right now") from err
        users: dict[str, OnlineUser] = {}
        for entry in live:
            seen = users.get(entry["user_id"])
            users[entry["user_id"]] = OnlineUser(
                entry["user_id"],
                entry["display_name"] if seen is None else seen.display_name,
                entry["since"] if seen is None else min(seen.since, entry["since"]),
                1 if seen is None else seen.connections + 1,
            )
        try:
            await self.store.prune(doc_id, expired)
        except CacheUnavailable as err:
            log.info("presence.prune_failed", doc_id=doc_id, error=str(err))
        return sorted(users.values(), key=lambda u: u.since)
