"""The Redis copy of the revocation denylist, trusted only while it is known to be complete.

Postgres holds every revocation (`revoked_access_tokens`, `token_families.revoked_at`,
`users.tokens_valid_after`); Redis holds a copy so the hot path costs one round trip. A Redis miss
means "not revoked" only if nothing was lost: a FLUSHALL, a restart without persistence, a restart
from a snapshot older than the last logout, a failover to a lagging replica and eviction under
memory pressure all turn a revoked token's miss into "allowed". So (RELIABILITY S20):

* The copy is **one hash** (`KEY`). Eviction, FLUSHALL and a restart remove a key as a whole, so the
  marks cannot disappear while the completeness mark survives; and the hash has no TTL, so
  `volatile-*` eviction policies never pick it (expired marks are pruned by the `cleanup_expired_sessions` job instead).
* Its `complete` field is written only after a full load from Postgres, and holds the `run_id` of
  the Redis process it was loaded into. A check trusts a miss only when `complete` equals the
  `run_id` of the server answering now (`Cache.server_run_id`, learned on every new connection):
  a restarted process reloading an old snapshot brings `complete` back, but under its old run id.
* Otherwise the check answers "unknown": the caller asks Postgres, and this node starts one
  background reload.
* A load first writes a `loading` nonce, then reads Postgres, then sets `complete` only if its nonce
  is still there (one Lua check-and-set). A FLUSHALL between the read and the write would also
  erase marks that logouts wrote meanwhile (committed after the read began); the flush takes the
  nonce with it, so such a load never claims completeness.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Awaitable, Callable, Iterable
from datetime import UTC, datetime, timedelta

import structlog
from redis.asyncio import Redis
from redis.typing import EncodableT, FieldT

from core.errors import Unavailable
from models.cache import CacheUnavailable
from models.repo import users as users_repo
from services import tokens
from services.deps import RevocationDeps

log = structlog.get_logger(__name__)
Marks = dict[FieldT, EncodableT]

KEY = "denylist"
COMPLETE = "complete"
LOADING = "loading"
# Marks per HSET while loading: bounded command size however long the denylist.
LOAD_BATCH = 1000
# Loads in a row when Redis is flushed under one (each is a full read of the revocation tables).
LOAD_ATTEMPTS = 3
# After a failed load a node waits this long before the next: a Redis that keeps failing must not
# turn every request into a full read of the revocation tables.
RELOAD_RETRY_S = 1.0

# Set `complete` only if the nonce this load wrote before reading Postgres is still there.
_COMPLETE_IF_OURS = """
if redis.call('HGET', KEYS[1], ARGV[1]) == ARGV[2] then
  redis.call('HSET', KEYS[1], ARGV[3], ARGV[4])
  redis.call('HDEL', KEYS[1], ARGV[1])
  return 1
end
return 0
"""


def jti_field(jti: str) -> str:
    return f"j:{jti}"


def family_field(family_id: str) -> str:
    return f"f:{family_id}"


def user_field(user_id: str) -> str:
    return f"u:{user_id}"


class Denylist:
    """One per node: checks against the Redis copy, writes to it, and reloads it (one load at a
    time per node) when it is not known to be complete."""

    def __init__(self, ctx: RevocationDeps) -> None:
        self.ctx = ctx
        self._reload: asyncio.Task[bool] | None = None
        self._failed_at = -RELOAD_RETRY_S

    @property
    def window_s(self) -> int:
        """How long a revocation can matter: no access token lives longer than this."""
        return self.ctx.settings.access_token_ttl_s + tokens.LEEWAY_S

    # --- the hot path ---------------------------------------------------------------------

    async def is_revoked(self, claims: tokens.TokenClaims) -> bool | None:
        """True/False from the copy, or None when the copy is not known complete (ask Postgres).

        Raises `CacheUnavailable` when Redis does not answer (the caller asks Postgres too)."""
        fields = [
            COMPLETE,
            jti_field(claims.jti),
            family_field(claims.family_id),
            user_field(claims.user_id),
        ]
        complete, jti_mark, family_mark, valid_after = await self.ctx.cache.run(
            lambda r: r.hmget(KEY, fields)
        )
        run_id = self.ctx.cache.server_run_id
        if complete is None or run_id is None or _text(complete) != run_id:
            self.start_reload()
            return None
        if jti_mark is not None or family_mark is not None:
            return True
        return valid_after is not None and claims.issued_at < float(valid_after)

    # --- writes (after the revocation is committed in Postgres) ----------------------------

    async def deny(
        self,
        *,
        jti: tuple[str, int] | None = None,
        family_ids: Iterable[str] = (),
        user_valid_after: tuple[str, int] | None = None,
    ) -> None:
        """Copy revocations into Redis: an access token (`jti`, its `exp`), whole families, or
        every token of a user issued before an epoch second. Raises `CacheUnavailable`."""
        drop_after = int(time.time()) + self.window_s
        marks: Marks = {family_field(f): drop_after for f in family_ids}
        if jti is not None:
            marks[jti_field(jti[0])] = jti[1]
        if user_valid_after is not None:
            marks[user_field(user_valid_after[0])] = user_valid_after[1]
        if marks:
            await self.ctx.cache.run(lambda r: r.hset(KEY, mapping=marks))

    # --- reload ---------------------------------------------------------------------------

    def start_reload(self) -> None:
        """Start a background reload unless one is running (or just failed) on this node."""
        if self._reload is not None and not self._reload.done():
            return
        if time.monotonic() - self._failed_at < RELOAD_RETRY_S:
            return
        self._reload = self.ctx.spawn(self._reload_logged(), name="denylist.reload")

    async def wait_reloaded(self) -> bool:
        """Wait for the running reload, if any (tests, start-up); True if it completed the copy."""
        return await self._reload if self._reload is not None else False

    async def _reload_logged(self) -> bool:
        try:
            done = await self.reload()
        except (CacheUnavailable, Unavailable) as err:
            log.warning("denylist.reload_failed", error=str(err))
            done = False
        if not done:
            self._failed_at = time.monotonic()
        return done

    async def reload(self) -> bool:
        """Copy every revocation that can still matter from Postgres; True once a load set
        `complete`. A load whose nonce vanished (Redis flushed meanwhile) is simply redone."""
        for _ in range(LOAD_ATTEMPTS):
            if await self._load_once():
                return True
        return False

    async def _load_once(self) -> bool:
        started = time.monotonic()
        nonce = uuid.uuid4().hex
        cache = self.ctx.cache
        await cache.run(lambda r: r.hset(KEY, LOADING, nonce))
        run_id = cache.server_run_id or ""
        marks = await self._marks_from_postgres()
        items = list(marks.items())
        for start in range(0, len(items), LOAD_BATCH):
            await cache.run(_hset_batch(dict(items[start : start + LOAD_BATCH])))
        done = await cache.run(
            lambda r: r.eval(_COMPLETE_IF_OURS, 1, KEY, LOADING, nonce, COMPLETE, run_id)
        )
        log.info(
            "denylist.loaded",
            marks=len(marks),
            complete=bool(done),
            ms=round((time.monotonic() - started) * 1000, 1),
        )
        return bool(done) and bool(run_id)

    async def _marks_from_postgres(self) -> Marks:
        now = datetime.now(UTC)
        since = now - timedelta(seconds=self.window_s)
        found = await users_repo.active_revocations(self.ctx.db, since)
        drop_after = int(now.timestamp()) + self.window_s
        marks: Marks = {family_field(f): drop_after for f in found.family_ids}
        marks.update({jti_field(j): int(exp.timestamp()) for j, exp in found.jtis})
        marks.update({user_field(u): int(at.timestamp()) for u, at in found.users_valid_after})
        return marks

    # --- pruning --------------------------------------------------------------------------

    async def prune(self) -> int:
        """Drop marks no live token can match any more; returns how many were dropped."""
        now = time.time()
        dropped = 0
        cursor = 0
        while True:
            cursor, page = await self.ctx.cache.run(_hscan_page(cursor))
            stale = [name for name, value in page.items() if self._expired(name, value, now)]
            if stale:
                dropped += await self.ctx.cache.run(_hdel(stale))
            if cursor == 0:
                return dropped

    def _expired(self, name: bytes, value: bytes, now: float) -> bool:
        kind = name[:2]
        if kind in (b"j:", b"f:"):
            return float(value) < now
        if kind == b"u:":
            return float(value) + self.window_s < now
        return False


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


def _raw(value: bytes | str) -> bytes:
    return value if isinstance(value, bytes) else value.encode()


def _hset_batch(batch: Marks) -> Callable[[Redis], Awaitable[int]]:
    async def op(r: Redis) -> int:
        return await r.hset(KEY, mapping=batch)

    return op


def _hscan_page(cursor: int) -> Callable[[Redis], Awaitable[tuple[int, dict[bytes, bytes]]]]:
    async def op(r: Redis) -> tuple[int, dict[bytes, bytes]]:
        next_cursor, page = await r.hscan(KEY, cursor, count=LOAD_BATCH)
        assert isinstance(page, dict)  # without `no_values`, HSCAN pages are field → value
        return next_cursor, {_raw(k): _raw(v) for k, v in page.items()}

    return op


def _hdel(names: list[bytes]) -> Callable[[Redis], Awaitable[int]]:
    async def op(r: Redis) -> int:
        return await r.hdel(KEY, *names)

    return op
