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

import time
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from typing import Any, Literal

import structlog

from models.cache import Cache, CacheUnavailable
from models.presence_store import PresenceHash

log = structlog.get_logger(__name__)

PresenceState = Literal["viewing", "left"]


def presence_subject(board_id: str) -> str:
    return f"collab.board.{board_id}.presence"


PRESENCE_PREFIX = "presence:board"


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
        self.hash = PresenceHash(cache, ttl_s, PRESENCE_PREFIX)

    async def put(self, entries: Iterable[BoardPresence]) -> None:
        await self.hash.put((e.board_id, e.conn_id, asdict(e)) for e in entries)

    async def remove(self, board_id: str, conn_id: str) -> None:
        await self.hash.remove(board_id, conn_id)

    async def current(self, board_id: str) -> list[dict[str, Any]]:
        """Live entries in a stable order (expired ones are skipped)."""
        live, _expired = await self.hash.live(board_id)
        return sorted(live, key=lambda e: e["conn_id"])


async def safely(coro: Any, what: str) -> Any:
    """Presence is best effort: a Redis outage is logged, never raised into the socket."""
    try:
        return await coro
    except CacheUnavailable as err:
        log.info("board_presence.unavailable", what=what, error=str(err))
        return None
