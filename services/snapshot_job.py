"""The periodic document jobs: snapshot dirty documents, clean up orphaned subjects, watch limits.

Finding dirty documents must work when the rooms that produced the updates live on other nodes,
so it reads the log itself: one (paged) JetStream STREAM.INFO call returns the message count of
every `collab.doc.*.update` subject, and one SQL query returns each document's compaction
bookkeeping. After a snapshot at S_new that purged through S_prev, the subject holds exactly the
`overlap_msgs` updates of (S_prev, S_new] plus the new ones, so `count - overlap_msgs` is the number
of updates no snapshot covers. Documents at or over `snapshot_min_updates` are snapshotted, largest
backlog first, at most `snapshot_max_docs_per_run` per run; a document whose last purge did not
happen is picked regardless, so the purge is finished. Documents with a small backlog stay in the
log until they grow or their room unloads (rooms snapshot on unload): replaying a few hundred
updates is cheap.

Under pressure (a subject at `CRITICAL_AT` of MaxMsgsPerSubject, or the stream at `CRITICAL_AT` of
MaxBytes) the job also snapshots documents below the threshold and purges *tight* (through the new
snapshot, no overlap): with discard-new, a full subject accepts no update that could trigger the
next snapshot, so waiting for one would never free it.

Subjects without a document row (a hard-deleted document, a failed duplicate, an injected subject)
would hold stream space forever and eventually make discard-new refuse everybody's updates: once
their newest message is older than `ORPHAN_MIN_AGE_S` they are purged.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

import nats.errors
import nats.js.errors
import structlog

from bus.doc_log import DocLog
from bus.doc_usage import CRITICAL_AT, assess, doc_id_of, stream_usage, subject_counts
from bus.jetstream import DOCS_STREAM, doc_update_subject
from core.errors import Unavailable
from models.repo import doc_content as content_repo
from services.snapshots import SnapshotResult, snapshot_document

if TYPE_CHECKING:
    from services.deps import SnapshotDeps

log = structlog.get_logger(__name__)

# The seed's name for the compaction job: documents' operation logs folded into snapshots.
SNAPSHOT_JOB = "compress_operation_logs"
STREAM_HEALTH_JOB = "stream_health"
# A subject without a document is left alone this long: the row may be about to appear (a document
# being created publishes only after its row commits, but clocks and retries are not exact).
ORPHAN_MIN_AGE_S = 3600.0
ORPHANS_PER_RUN = 20


@dataclass(frozen=True)
class DirtyDoc:
    doc_id: str
    stored_msgs: int
    new_msgs: int
    purge_pending: bool
    # The subject (or the whole stream) is near its limit: snapshot and purge tight.
    pressure: bool = False


@dataclass
class JobReport:
    snapshots: list[SnapshotResult] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)
    orphans_purged: list[str] = field(default_factory=list)

    def counts(self) -> dict[str, int]:
        """The history row's counts (`server/scheduler.py` `run_counts`)."""
        return {
            "snapshotted": sum(1 for s in self.snapshots if s.status == "snapshotted"),
            "updates_compacted": sum(s.updates for s in self.snapshots),
            "failed": len(self.failed),
            "orphans_purged": len(self.orphans_purged),
        }


def is_uuid(value: str) -> bool:
    try:
        return str(uuid.UUID(value)) == value
    except ValueError:
        return False


async def scan(ctx: SnapshotDeps) -> tuple[list[DirtyDoc], list[str]]:
    """Every document with stored updates (with its backlog), and subjects with no document."""
    usage = await stream_usage(ctx.nats, with_subjects=False)
    stream_full = usage.max_bytes > 0 and usage.bytes >= CRITICAL_AT * usage.max_bytes
    per_subject = usage.max_msgs_per_subject
    counts = {}
    for subject, count in (await subject_counts(ctx.nats)).items():
        doc_id = doc_id_of(subject)
        if doc_id is not None:
            counts[doc_id] = count
    ids = [d for d in counts if is_uuid(d)]
    existing = await content_repo.existing_documents(ctx.db, ids)
    compactions = await content_repo.get_compactions(ctx.db, list(existing))
    docs = []
    for doc_id in existing:
        compaction = compactions.get(doc_id)
        overlap = compaction.overlap_msgs if compaction else 0
        pending = compaction is not None and compaction.purge_pending
        stored = counts[doc_id]
        full = stream_full or (per_subject > 0 and stored >= CRITICAL_AT * per_subject)
        docs.append(DirtyDoc(doc_id, stored, max(0, stored - overlap), pending, full))
    orphans = [d for d in counts if d not in existing]
    return docs, orphans


def pick_dirty(docs: list[DirtyDoc], *, min_updates: int, limit: int) -> list[DirtyDoc]:
    wanted = [d for d in docs if d.pressure or d.purge_pending or d.new_msgs >= min_updates]
    wanted.sort(key=lambda d: (not d.pressure, not d.purge_pending, -d.new_msgs, -d.stored_msgs))
    return wanted[:limit]


async def find_dirty(ctx: SnapshotDeps, *, min_updates: int, limit: int) -> list[DirtyDoc]:
    docs, _orphans = await scan(ctx)
    return pick_dirty(docs, min_updates=min_updates, limit=limit)


async def snapshot_dirty(ctx: SnapshotDeps) -> JobReport:
    """The snapshot job: compact the dirtiest documents, then purge stale orphaned subjects."""
    settings = ctx.settings
    docs, orphans = await scan(ctx)
    report = JobReport()
    dirty = pick_dirty(
        docs, min_updates=settings.snapshot_min_updates, limit=settings.snapshot_max_docs_per_run
    )
    for doc in dirty:
        try:
            report.snapshots.append(await snapshot_document(ctx, doc.doc_id, tight=doc.pressure))
        except Unavailable:
            report.failed.append(doc.doc_id)
            raise  # Postgres or NATS is down: the next tick tries again, nothing was purged
        except Exception:
            # One broken document must not stop the others being compacted.
            log.exception("snapshot.failed", doc_id=doc.doc_id)
            report.failed.append(doc.doc_id)
    report.orphans_purged = await purge_orphans(ctx, orphans[:ORPHANS_PER_RUN])
    return report


async def purge_orphans(ctx: SnapshotDeps, doc_ids: list[str]) -> list[str]:
    doc_log: DocLog = ctx.doc_log
    purged = []
    cutoff = datetime.now(UTC) - timedelta(seconds=ORPHAN_MIN_AGE_S)
    for doc_id in doc_ids:
        try:
            last = await ctx.nats.jetstream.get_last_msg(
                DOCS_STREAM, doc_update_subject(doc_id), direct=True
            )
        except nats.js.errors.NotFoundError:
            continue
        except (nats.errors.Error, nats.js.errors.Error, TimeoutError) as err:
            log.warning("orphan.check_failed", doc_id=doc_id, error=repr(err))
            continue
        if last.time is None or last.time > cutoff or not last.seq:
            continue
        await doc_log.purge_through(doc_id, last.seq)
        log.warning("orphan.purged", doc_id=doc_id, through=last.seq)
        purged.append(doc_id)
    return purged


async def check_stream_health(ctx: SnapshotDeps) -> list[str]:
    """The alert before limits: log at 50% (warning) and 80% (error) of any COLLAB_DOCS limit."""
    findings = assess(await stream_usage(ctx.nats))
    levels = []
    for finding in findings:
        if finding.level == "ok":
            continue
        emit = log.error if finding.level == "critical" else log.warning
        emit(
            "stream.limit_near",
            stream=DOCS_STREAM,
            limit=finding.limit,
            used=finding.used,
            maximum=finding.maximum,
            percent=round(100 * finding.fraction, 1),
        )
        levels.append(f"{finding.limit}:{finding.level}")
    return levels
