"""Password hashing with argon2id (argon2-cffi's tuned defaults).

Hashing is deliberately slow (tens of ms of CPU), so it runs in a worker thread: doing it on the
IOLoop would stall every WebSocket on the node during a login burst.
"""

from __future__ import annotations

import asyncio

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

_hasher = PasswordHasher()
# Verified against when the email is unknown, so "no such user" costs the same time as
# "wrong password" (no account enumeration by timing).
_DUMMY_HASH = _hasher.hash("not-a-real-password-used-for-timing")
MIN_PASSWORD_LENGTH = 10


async def hash_password(password: str) -> str:
    return await asyncio.to_thread(_hasher.hash, password)


async def verify_password(stored_hash: str | None, password: str) -> bool:
    def check() -> bool:
        try:
            return _hasher.verify(stored_hash or _DUMMY_HASH, password) and stored_hash is not None
        except (VerifyMismatchError, VerificationError, InvalidHashError):
            return False

    return await asyncio.to_thread(check)
