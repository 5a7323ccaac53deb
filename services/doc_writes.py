"""Server-side writes into a live document (restore, REST block edits): one path for all of them.

A server write is a diff on the live history (services/crdt_diff.py) published through the
document log like any editor's update, so every room on every node applies it and connected
editors see it at once. What this module adds around the publish:

* **One server write per document at a time, across nodes**: a transaction-level advisory lock
  on the document, held from reading the current state to recording the result. Two REST writes
  computed from the same state would both be correct CRDT edits, but a retried attempt must find
  the first one's record, and a diff must be computed from a state that includes the previous
  server write (else e.g. two restores of different versions mix). Editors' own updates never
  wait for it: they go through the rooms.
* **Idempotency by key**: the publish carries `Nats-Msg-Id: <kind>:<key>`; the msg-id → seq map
  (`document_operations`) is written in the same transaction as the caller's own record, so a
  retry after the JetStream duplicate window (or after a purge) still finds the first result.
* **Origin tags**: `Collab-Client: server:<kind>`, `Collab-User: <caller>` on the log entry.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING

from models.locks import LockNamespace, xact_lock
from models.repo import doc_snapshots
from services.doc_state import DocState, load_state
from services.unit_of_work import UnitOfWork, unit_of_work

if TYPE_CHECKING:
    import asyncpg

    from services.deps import Deps


@asynccontextmanager
async def write_lock(ctx: Deps, doc_id: str) -> AsyncIterator[UnitOfWork]:
    """A unit of work holding the document's server-write lock; commit releases it."""
    async with unit_of_work(ctx) as uow:
        await xact_lock(uow.conn, LockNamespace.DOC_WRITE, doc_id)
        yield uow


async def recorded_seq(conn: asyncpg.Connection, doc_id: str, msg_id: str) -> int | None:
    """The log seq a server write with this msg-id got, if one was recorded."""
    return await doc_snapshots.get_operation_seq(conn, doc_id, msg_id)


async def current_state(ctx: Deps, doc_id: str, conn: asyncpg.Connection | None = None) -> DocState:
    """The document now. Pass the write lock's connection: reading on a second pooled connection
    while holding one could exhaust the pool under many concurrent writes (each waiting for a
    second connection that the others hold)."""
    return await load_state(conn if conn is not None else ctx.db, ctx.doc_log, doc_id)


async def publish_write(
    ctx: Deps,
    conn: asyncpg.Connection,
    doc_id: str,
    diff: bytes,
    *,
    msg_id: str,
    kind: str,
    user: str,
) -> int:
    """Publish `diff` through the log and record msg-id → seq in `conn`'s transaction."""
    ack = await ctx.doc_log.publish(doc_id, diff, msg_id=msg_id, client=f"server:{kind}", user=user)
    return await doc_snapshots.record_operation(conn, doc_id, msg_id, ack.seq)
