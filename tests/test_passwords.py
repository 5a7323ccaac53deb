"""The bounded password-hashing pool (services/passwords.py): at most `workers` hashes at a time,
at most `queue` waiting, the rest refused at once (RELIABILITY S24: hashing cannot starve the
node). The latency effect is measured in bench/password_hashing.py, not asserted here."""

from __future__ import annotations

import asyncio
import threading

import pytest

from core.errors import Unavailable
from services import passwords
from services.passwords import PasswordHashing

pytestmark = pytest.mark.timeout(60)


def argon2_threads() -> set[threading.Thread]:
    # Thread objects, not names: every pool names its threads argon2_0, argon2_1, …, and a pool of
    # an earlier test may still be winding down (stop() does not wait), so names would collide.
    return {t for t in threading.enumerate() if t.name.startswith("argon2")}


async def test_hash_and_verify_round_trip() -> None:
    pool = PasswordHashing(workers=1, queue=4)
    try:
        stored = await pool.hash("correct horse battery staple")
        assert await pool.verify(stored, "correct horse battery staple")
        assert not await pool.verify(stored, "wrong")
        assert not await pool.verify(None, "anything")  # unknown user: dummy hash, False
        assert not await pool.verify("not-a-hash", "anything")
    finally:
        await pool.stop()


def test_unknown_user_hash_has_todays_parameters() -> None:
    """The constant an unknown email is checked against costs what a real account's hash does:
    made with the hasher's parameters (memory, passes, lanes), so a parameter change that forgets
    it fails here instead of making "no such user" answer faster (account enumeration)."""
    assert not passwords._hasher.check_needs_rehash(passwords._DUMMY_HASH)
    assert passwords._hasher.verify(passwords._DUMMY_HASH, "not-a-real-password-used-for-timing")


async def test_parallel_checks_use_at_most_the_configured_threads() -> None:
    before = argon2_threads()
    pool = PasswordHashing(workers=2, queue=16)
    try:
        results = await asyncio.gather(*(pool.verify(None, f"guess {i}") for i in range(8)))
        assert results == [False] * 8
        assert len(argon2_threads() - before) == 2
    finally:
        await pool.stop()


async def test_checks_beyond_the_queue_are_refused_at_once_with_retry_after() -> None:
    pool = PasswordHashing(workers=1, queue=1)
    try:
        running = asyncio.ensure_future(pool.verify(None, "first"))
        waiting = asyncio.ensure_future(pool.verify(None, "second"))
        await asyncio.sleep(0)  # both admitted: one hashing, one queued
        with pytest.raises(Unavailable) as refused:
            await pool.verify(None, "third")
        assert refused.value.status == 503
        assert refused.value.code == "password_checks_busy"
        assert refused.value.headers["Retry-After"] == "1"
        assert await asyncio.gather(running, waiting) == [False, False]
        assert await pool.verify(None, "after the burst") is False  # capacity is given back
    finally:
        await pool.stop()
