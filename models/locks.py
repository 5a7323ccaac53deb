"""Postgres advisory locks, written once: transaction-level, keyed by (namespace, text key).

Every lock of the service is `pg_[try_]advisory_xact_lock(namespace, hashtext(key))`: the
namespace says what is locked (one per feature, listed here so two features can never pick the
same number), the key which one (a document id, a job name, a workspace id). Transaction-level
locks are released by COMMIT or ROLLBACK, so a crashed node or a cancelled task cannot leave one
behind. A `hashtext` collision only makes two keys of the same namespace wait for (or skip) each
other now and then, never a wrong result.
"""

from __future__ import annotations

from enum import IntEnum

import asyncpg


class LockNamespace(IntEnum):
    """The first key of every advisory lock (int4)."""

    # Moves within one workspace's page tree run one at a time (cycle check + update).
    PAGE_TREE = 72_451_901
    # One snapshot of a document at a time, across nodes (services/snapshots.py).
    SNAPSHOT = 72_451_902
    # One run of a scheduled job at a time, across nodes (server/scheduler.py).
    JOB = 72_451_903


async def xact_lock(conn: asyncpg.Connection, namespace: LockNamespace, key: str) -> None:
    """Wait for the lock; held until the transaction of `conn` ends."""
    await conn.execute("SELECT pg_advisory_xact_lock($1::int, hashtext($2))", namespace, key)


async def try_xact_lock(conn: asyncpg.Connection, namespace: LockNamespace, key: str) -> bool:
    """Take the lock if free (held until the transaction ends); False if someone holds it."""
    return bool(
        await conn.fetchval(
            "SELECT pg_try_advisory_xact_lock($1::int, hashtext($2))", namespace, key
        )
    )
