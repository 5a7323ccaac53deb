"""Automatic-version retention: one policy, applied in two places.

A snapshot that records an automatic version prunes that document right away
(`services/snapshots.py`); the `cleanup_old_versions` job applies the same function to every
document the policy finds over its limits — documents no snapshot touched since the policy was
tightened (a lower `COLLAB_AUTO_VERSIONS_KEEP`, a new `COLLAB_AUTO_VERSIONS_MAX_AGE_S`). Named and
restore versions are never pruned; the newest automatic version of a document always stays.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import structlog

from models.db import Executor
from models.repo import documents as documents_repo
from models.repo import job_runs

if TYPE_CHECKING:
    from services.deps import ClientDeps

log = structlog.get_logger(__name__)

CLEANUP_VERSIONS_JOB = "cleanup_old_versions"
CLEANUP_VERSIONS_EVERY_S = 3600.0
# Documents pruned per run (each its own short transaction); the next run resumes after the last.
DOCS_PER_RUN = 200


@dataclass(frozen=True)
class RetentionPolicy:
    interval_s: float  # at most one automatic version per document per interval
    keep: int  # the newest `keep` automatic versions stay
    max_age_s: float = 0  # > 0: older automatic versions go too (the newest one excepted)


def retention_of(ctx: ClientDeps) -> RetentionPolicy:
    settings = ctx.settings
    return RetentionPolicy(
        settings.auto_version_interval_s,
        settings.auto_versions_keep,
        settings.auto_versions_max_age_s,
    )


async def prune_document(conn: Executor, doc_id: str, policy: RetentionPolicy) -> int:
    """Drop what the policy does not keep of one document's automatic versions."""
    pruned = await documents_repo.prune_auto_versions(conn, doc_id, policy.keep, policy.max_age_s)
    if pruned:
        log.info("versions.pruned", doc_id=doc_id, pruned=pruned)
    return pruned


async def cleanup_old_versions(ctx: ClientDeps) -> dict[str, int]:
    """The job: at most `DOCS_PER_RUN` documents over the policy, in id order from where the last
    run stopped (wrapping around); idempotent (a second run finds nothing to drop)."""
    policy = retention_of(ctx)
    after = await job_runs.get_cursor(ctx.db, CLEANUP_VERSIONS_JOB)
    docs = await documents_repo.documents_over_retention(
        ctx.db, policy.keep, policy.max_age_s, after, DOCS_PER_RUN
    )
    if not docs and after is not None:  # reached the end: start again from the first document
        docs = await documents_repo.documents_over_retention(
            ctx.db, policy.keep, policy.max_age_s, None, DOCS_PER_RUN
        )
    pruned = 0
    for doc_id in docs:
        async with ctx.db.transaction() as conn:
            pruned += await prune_document(conn, doc_id, policy)
    await job_runs.set_cursor(
        ctx.db, CLEANUP_VERSIONS_JOB, docs[-1] if len(docs) == DOCS_PER_RUN else None
    )
    return {"documents": len(docs), "versions_deleted": pruned}
