"""Postgres advisory locks, written once: transaction-level, keyed by (namespace, text key).

Every lock of the service is `pg_[try_]advisory_xact_lock(namespace, hashtext(key))`: the
namespace says what is locked (one per feature, listed here so two features can never pick the
same number), the key which one (a document id, a job name, a workspace id). Transaction-level
locks are released by COMMIT or ROLLBACK, so a crashed node or a cancelled task cannot leave one
behind. A `hashtext` collision only makes two keys of the same namespace wait for (or skip) each
other now and then, never a wrong result.

The one lock that is not here is the migration lock (models/migrate.py): session-level, taken by
the synchronous migrator on its own connection before any pool exists.
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
    # Server-side writes to one document (restore, block edits) run one at a time, so each diffs
    # against the state the previous one left (services/doc_writes.py).
    DOC_WRITE = 72_451_904
    # Held shared by every snapshot transaction and exclusively (a session lock, key 0) by
    # `collab backup` from before its pg_dump until the JetStream snapshot is received
    # (ops/backup.py). It was 72_451_904 too before this table existed: the same number as the
    # document write lock, which is what one table of namespaces prevents.
    BACKUP_FENCE = 72_451_905


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


async def try_xact_fence_shared(conn: asyncpg.Connection, namespace: LockNamespace) -> bool:
    """Take a fence (one lock per namespace, key 0) shared, for this transaction; False while
    someone holds it exclusively (`fence_exclusive`)."""
    return bool(
        await conn.fetchval("SELECT pg_try_advisory_xact_lock_shared($1::int, 0)", namespace)
    )


async def fence_exclusive(conn: asyncpg.Connection, namespace: LockNamespace) -> None:
    """Hold a fence exclusively for the rest of the session of `conn` (close it to release)."""
    await conn.execute("SELECT pg_advisory_lock($1::int, 0)", namespace)
