"""Fixed-window rate limits in Redis, with an in-process fallback.

Rate limiting fails soft: when Redis is unavailable each node limits on its own counters (a client
spread over N nodes gets up to N× the budget for the outage) rather than either blocking everyone
or dropping the limit.
"""

from __future__ import annotations

import time
from collections import OrderedDict

from redis.asyncio import Redis

from core.errors import RateLimited
from models.cache import Cache, CacheUnavailable

LOCAL_MAX_KEYS = 50_000


class RateLimiter:
    def __init__(self, cache: Cache) -> None:
        self.cache = cache
        self._local: OrderedDict[str, tuple[int, int]] = OrderedDict()

    async def hit(self, key: str, limit: int, window_s: int) -> None:
        """Count one event for `key`; raise RateLimited once `limit` is exceeded in the window."""
        window = int(time.time() // window_s)
        bucket = f"rl:{key}:{window}"
        try:
            count = await self.cache.run(lambda r: self._incr(r, bucket, window_s))
        except CacheUnavailable:
            count = self._local_incr(bucket)
        if count > limit:
            retry_after = int((window + 1) * window_s - time.time()) + 1
            raise RateLimited("too many requests, slow down", retry_after_s=retry_after)

    @staticmethod
    async def _incr(r: Redis, bucket: str, window_s: int) -> int:
        async with r.pipeline(transaction=True) as pipe:
            pipe.incr(bucket)
            pipe.expire(bucket, window_s + 1)
            count, _ = await pipe.execute()
        return int(count)

    def _local_incr(self, bucket: str) -> int:
        count = self._local.get(bucket, (0, 0))[0] + 1
        self._local[bucket] = (count, 0)
        self._local.move_to_end(bucket)
        while len(self._local) > LOCAL_MAX_KEYS:
            self._local.popitem(last=False)
        return count
