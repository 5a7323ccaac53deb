"""Password hashing with argon2id (argon2-cffi's tuned defaults), on a bounded pool of threads.

Hashing is deliberately slow (tens of ms of CPU and 64 MiB per hash), so it never runs on the
IOLoop: that would stall every WebSocket on the node during a login burst. Nor on asyncio's
default executor: parallel password guessers (or a login storm) would run one hash per executor
thread on every core and take the CPU from the IOLoop, raising everyone else's latency (measured
in bench/password_hashing.py). `PasswordHashing` runs at most `workers` hashes at a time, lets at
most `queue` more wait, and refuses the rest with 503 + Retry-After instead of queueing without
bound. Per-account and per-IP attempt limits (services/auth.py) come first; this bounds what is
left when many accounts or many addresses guess at once.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

from core.errors import Unavailable

T = TypeVar("T")
# One lane, so one hash is one thread and the pool's `workers` is the number of cores hashing can
# take. argon2-cffi's default (4 lanes) runs 4 threads per hash, which no pool size would bound.
# Memory and passes stay at its defaults (64 MiB, 3), so a guess costs an attacker the same.
# Hashes made with other parameters still verify (they carry their own) and are redone at the
# next successful login (`needs_rehash`).
_hasher = PasswordHasher(parallelism=1)
# Verified against when the email is unknown, so "no such user" costs the same time as
# "wrong password" (no account enumeration by timing). A constant made once with `_hasher`'s
# parameters (tests/test_passwords.py checks they still match): hashing it at import cost every
# process -- `collab serve`, each CLI command -- a hash's CPU and 64 MiB of peak RSS at start-up.
_DUMMY_HASH = "$argon2id$v=19$m=65536,t=3,p=1$XyuNa6iza2J5AO6ZSHrFUA$ToyX7ww/eDY2cmTP4TeZ69ECgn7AThes9/wdtnVF/Fw"
MIN_PASSWORD_LENGTH = 10
# What a refused caller is told to wait: about the time the queue takes to drain a little.
BUSY_RETRY_AFTER_S = 1


def _check(stored_hash: str | None, password: str) -> bool:
    try:
        return _hasher.verify(stored_hash or _DUMMY_HASH, password) and stored_hash is not None
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False


class PasswordHashing:
    """The node's hashing pool (a component: `stop()` ends its threads)."""

    def __init__(self, workers: int, queue: int) -> None:
        self.workers = max(1, workers)
        self.capacity = self.workers + max(0, queue)
        self._executor = ThreadPoolExecutor(self.workers, thread_name_prefix="argon2")
        self._admitted = 0  # running + waiting, counted on the IOLoop thread only

    @staticmethod
    def needs_rehash(stored_hash: str) -> bool:
        """True for a hash made with other parameters than today's (e.g. the old 4 lanes)."""
        try:
            return _hasher.check_needs_rehash(stored_hash)
        except InvalidHashError:
            return False

    async def hash(self, password: str) -> str:
        return await self._run(_hasher.hash, password)

    async def verify(self, stored_hash: str | None, password: str) -> bool:
        """False for a wrong password, an unknown user (None, checked against a dummy hash for
        equal timing) or a malformed stored hash."""
        return await self._run(_check, stored_hash, password)

    async def _run(self, func: Callable[..., T], *args: object) -> T:
        if self._admitted >= self.capacity:
            raise Unavailable(
                "too many password checks in progress, retry",
                code="password_checks_busy",
                headers={"Retry-After": str(BUSY_RETRY_AFTER_S)},
            )
        self._admitted += 1
        try:
            loop = asyncio.get_running_loop()
            return await loop.run_in_executor(self._executor, func, *args)
        finally:
            self._admitted -= 1

    async def start(self) -> None:
        """Threads start on first use."""

    async def stop(self) -> None:
        self._executor.shutdown(wait=False, cancel_futures=True)
