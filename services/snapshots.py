"""Snapshots: compact a document's log into Postgres, then purge the log one snapshot behind.

`snapshot_document(ctx, doc_id)` is the one entry point: the scheduler's job calls it for dirty
documents, the rooms call it when a room unloads, `collab snapshot-now` calls it by hand. Any node
may call it at any time for any document:

1. In one Postgres transaction: `pg_try_advisory_xact_lock` on the document (taken ⇒ another node
   is snapshotting it: skip). A transaction-level lock, because asyncpg's pool would release a
   session lock with the connection (DESIGN.md §7); it dies with the transaction or the connection.
2. Read the previous snapshot (state, S_prev) and the log after S_prev; nothing new ⇒ done.
3. State = the previous state and the raw updates re-encoded by a `Doc` in the projection worker
   when the previous state is itself a re-encoding and core/compaction.py proves nothing is lost
   (no pending structs or deletions (R16) that the purge below would then lose for good, no split
   surrogate pair); else `merge_updates(prev_state, *raw updates)`, which the worker then
   re-encodes when a cheap check says it could pass (never on the loop: loading a merged state
   into a `Doc` can take seconds). The row's `compact` says which.
4. Save it at S_new with the monotonic upsert (`WHERE seq < S_new`): a lock is not a fence, a stale
   runner whose lock died with its connection cannot move the snapshot backwards (R9). In the same
   transaction: the compaction bookkeeping, the blocks projection, an automatic version.
5. COMMIT, re-read the snapshot seq, and only then purge the subject through S_prev (not S_new):
   a joiner that loaded S_prev a moment ago still finds (S_prev, S_new] in the log. A crash at any
   step loses nothing: before the commit nothing changed; after it, the purge is just late, and the
   next run finishes it (`document_compactions.purged_through < prev_seq`).

Automatic version retention: a snapshot records an automatic version when the newest automatic
version of the document is older than `auto_version_interval_s` (default 10 min), and prunes the
document by the retention policy (`services/version_retention.py`, which the `cleanup_old_versions`
job applies to every document). Named and restore versions are never pruned.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Literal

import asyncpg
import nats.errors
import nats.js.errors
import structlog

from bus.doc_log import DocLog, LogEntry
from core.compaction import reencode_off_loop, worth_reencoding
from core.errors import Unavailable
from core.yjs import ProtocolError, merge_skipping
from models.locks import LockNamespace, try_xact_fence_shared, try_xact_lock
from models.repo import doc_content as content_repo
from models.repo import doc_snapshots
from models.repo import documents as documents_repo
from services.doc_content import state_vector
from services.projection import refresh_projection
from services.unit_of_work import UnitOfWork
from services.version_authors import spans_of
from services.version_retention import RetentionPolicy, prune_document, retention_of

if TYPE_CHECKING:
    from services.deps import SnapshotDeps

log = structlog.get_logger(__name__)


Status = Literal["snapshotted", "up_to_date", "locked", "fenced", "missing"]
Hook = Callable[[asyncpg.Connection | None], Awaitable[None]]


@dataclass(frozen=True)
class SnapshotHooks:
    """Fault-injection points for tests (R7/R8); each gets the snapshot's connection (None once
    the transaction is over)."""

    before_write: Hook | None = None
    after_write: Hook | None = None
    before_commit: Hook | None = None
    after_commit: Hook | None = None
    before_purge: Hook | None = None


NO_HOOKS = SnapshotHooks()


@dataclass(frozen=True)
class SnapshotResult:
    doc_id: str
    status: Status
    seq: int = 0  # the snapshot's sequence after this run
    prev_seq: int = 0
    updates: int = 0  # log entries folded into the snapshot
    purged_through: int = 0  # 0 when this run purged nothing
    auto_version: bool = False
    poison_skipped: int = 0


@dataclass(frozen=True)
class _Plan:
    result: SnapshotResult
    purge_through: int = 0


async def _call(hook: Hook | None, conn: asyncpg.Connection | None) -> None:
    if hook is not None:
        await hook(conn)


async def snapshot_document(
    ctx: SnapshotDeps, doc_id: str, *, hooks: SnapshotHooks = NO_HOOKS, tight: bool = False
) -> SnapshotResult:
    """Compact `doc_id` now if it has updates no snapshot covers (safe from any node, any time).

    `tight`: purge through the new snapshot instead of one behind it. For a stream at its limits
    only (the job decides): the overlap alone can fill a subject's MaxMsgsPerSubject, and then no
    update can arrive to trigger the next snapshot. Loaders stay correct without the overlap (they
    re-check the snapshot and reload), they just reload more often.

    Raises `Unavailable` when Postgres or NATS is down; nothing is purged then.
    """
    doc_log: DocLog = ctx.doc_log
    try:
        async with ctx.db.transaction() as conn:
            plan = await _snapshot_in_transaction(ctx, conn, doc_log, doc_id, hooks, tight)
    except asyncpg.exceptions.InternalClientError as err:
        # asyncpg's state machine can trip over a connection terminated right before COMMIT
        # (R7): the commit is not confirmed, so nothing is purged; the next run sees what is.
        raise Unavailable("snapshot connection lost before the commit was confirmed") from err
    if plan.result.status == "snapshotted":
        log.info(
            "snapshot.saved",
            doc_id=doc_id,
            seq=plan.result.seq,
            prev_seq=plan.result.prev_seq,
            updates=plan.result.updates,
        )
    await _call(hooks.after_commit, None)
    if plan.purge_through <= 0:
        return plan.result
    return await _purge_behind(ctx, doc_log, plan, hooks)


async def _snapshot_in_transaction(
    ctx: SnapshotDeps,
    conn: asyncpg.Connection,
    doc_log: DocLog,
    doc_id: str,
    hooks: SnapshotHooks,
    tight: bool,
) -> _Plan:
    # Every snapshot holds the backup fence shared, so none can commit (and no purge can run past
    # what the dump's snapshots cover) while `collab backup` holds it (ops/backup.py).
    fenced = await try_xact_fence_shared(conn, LockNamespace.BACKUP_FENCE)
    if not fenced or not await try_xact_lock(conn, LockNamespace.SNAPSHOT, doc_id):
        return _Plan(SnapshotResult(doc_id, "locked"))
    if not await documents_repo.document_exists(conn, doc_id):
        return _Plan(SnapshotResult(doc_id, "missing"))
    previous = await doc_snapshots.get_snapshot(conn, doc_id)
    entries = await doc_log.read(doc_id, previous.seq)
    if not entries:
        return await _finish_pending_purge(conn, doc_id, previous.seq, tight)
    state, skipped, compact = await _fold(ctx, doc_id, previous, entries)
    new_seq = entries[-1].seq
    result = SnapshotResult(
        doc_id,
        "snapshotted",
        seq=new_seq,
        prev_seq=previous.seq,
        updates=len(entries),
        poison_skipped=skipped,
    )
    await _call(hooks.before_write, conn)
    saved = await doc_snapshots.save_snapshot(
        conn,
        doc_id,
        seq=new_seq,
        state=state,
        state_vector=state_vector(state),
        update_count=len(entries),
        compact=compact,
    )
    if not saved:
        log.warning("snapshot.fenced", doc_id=doc_id, seq=new_seq)
        return _Plan(replace(result, status="fenced"))
    await _call(hooks.after_write, conn)
    await content_repo.save_compaction(
        conn, doc_id, snapshot_seq=new_seq, prev_seq=previous.seq, overlap_msgs=len(entries)
    )
    # Authors are read from the log's headers, which the purge below removes: kept first.
    await content_repo.record_author_spans(conn, doc_id, spans_of(entries))
    # Anchor events staged here are published by the outbox relay job (a snapshot has no
    # after-commit publisher); live edits reach the projection first, through the refresher.
    await refresh_projection(
        UnitOfWork(conn),
        ctx.projection_worker,
        doc_id,
        new_seq,
        state,
        ctx.settings.content_fragment,
    )
    auto_version = await _keep_auto_version(conn, doc_id, new_seq, state, retention_of(ctx))
    await _call(hooks.before_commit, conn)
    purge_through = new_seq if tight else previous.seq
    return _Plan(replace(result, auto_version=auto_version), purge_through=purge_through)


async def _finish_pending_purge(
    conn: asyncpg.Connection, doc_id: str, seq: int, tight: bool
) -> _Plan:
    """Nothing new; but if the last run committed and died before its purge, purge now (and in
    tight mode, drop the overlap too)."""
    compaction = await content_repo.get_compaction(conn, doc_id)
    result = SnapshotResult(doc_id, "up_to_date", seq=seq)
    if compaction is None or compaction.snapshot_seq != seq:
        return _Plan(result)
    target = seq if tight else compaction.prev_seq
    if compaction.purged_through >= target:
        return _Plan(result)
    return _Plan(replace(result, prev_seq=compaction.prev_seq), purge_through=target)


async def _fold(
    ctx: SnapshotDeps, doc_id: str, previous: doc_snapshots.Snapshot, entries: list[LogEntry]
) -> tuple[bytes, int, bool]:
    """The new state, the entries skipped and whether it is a re-encoding.

    Re-encoded in the projection worker (never on the loop: a long log, or a merged state, takes
    yrs seconds to load) onto a re-encoded previous state, when that provably loses nothing;
    else merge_updates over the raw log, where an entry pycrdt cannot parse (S3: injected past the
    app's validation) is skipped and logged instead of blocking compaction of the document
    forever -- and that merged state is re-encoded in the worker when a cheap check says it could
    pass (every snapshot written before re-encoding existed is merged: this converts them)."""
    updates = [e.update for e in entries]
    if previous.compact:
        encoded = await _reencode_in_worker(ctx, doc_id, previous.state, updates)
        if encoded is not None:
            return encoded, 0, True
    skipped: list[int] = []

    def skip(index: int, err: ProtocolError) -> None:
        skipped.append(index)
        seq = entries[index - 1].seq  # index 0 is `previous`
        log.error("snapshot.poison_skipped", doc_id=doc_id, seq=seq, error=str(err))

    state = merge_skipping([previous.state, *updates], skip)
    if worth_reencoding(state):
        encoded = await _reencode_in_worker(ctx, doc_id, state, [])
        if encoded is not None:
            log.info("snapshot.reencoded", doc_id=doc_id, merged=len(state), size=len(encoded))
            return encoded, len(skipped), True
    return state, len(skipped), False


async def _reencode_in_worker(
    ctx: SnapshotDeps, doc_id: str, base: bytes, updates: list[bytes]
) -> bytes | None:
    try:
        return await ctx.projection_worker.run(reencode_off_loop, base, updates)
    except Unavailable as err:
        log.warning("snapshot.reencode_failed", doc_id=doc_id, error=str(err))
        return None


async def _keep_auto_version(
    conn: asyncpg.Connection, doc_id: str, seq: int, state: bytes, policy: RetentionPolicy
) -> bool:
    last = await documents_repo.last_auto_version(conn, doc_id)
    now = datetime.now(UTC)
    if last is not None and last["created_at"] > now - timedelta(seconds=policy.interval_s):
        return False
    await documents_repo.insert_version(
        conn, doc_id, seq=seq, state=state, kind="auto", name=None, created_by=None
    )
    await prune_document(conn, doc_id, policy)
    return True


async def _purge_behind(
    ctx: SnapshotDeps, doc_log: DocLog, plan: _Plan, hooks: SnapshotHooks
) -> SnapshotResult:
    """Purge through the previous snapshot, only if the committed snapshot is really there."""
    result = plan.result
    committed = await doc_snapshots.get_snapshot_seq(ctx.db, result.doc_id)
    if committed < max(result.seq, plan.purge_through):
        log.error("snapshot.commit_not_visible", doc_id=result.doc_id, seq=result.seq)
        return result
    await _call(hooks.before_purge, None)
    try:
        await doc_log.purge_through(result.doc_id, plan.purge_through)
    except (nats.errors.Error, nats.js.errors.Error, TimeoutError) as err:
        # The snapshot is committed; the next run finishes the purge (purged_through < prev_seq).
        log.warning("snapshot.purge_deferred", doc_id=result.doc_id, error=repr(err))
        return result
    await content_repo.mark_purged(ctx.db, result.doc_id, plan.purge_through)
    return replace(result, purged_through=plan.purge_through)
