"""The `index_document_for_search` job: a catch-up sweep, not the indexer.

Indexing happens inline: the projection refresher (`services/projection_refresher.py`) re-projects a
document within `COLLAB_PROJECTION_REFRESH_S` of an edit, snapshots and REST writes project in
their own transaction, and row triggers keep the search vectors of the rows they write. What can be
missed is a refresh: the refresher hears of edits over core NATS, at most once, so an edit during a
NATS hiccup (or on a node that died before its period ended) leaves the document's `blocks` — and
so its search hits — behind the log until the next edit or snapshot.

The sweep finds those documents: every document with updates in the log (one paged STREAM.INFO
call, as the snapshot job does) whose projection is at a lower sequence than its newest update is
re-projected (`refresh_projection_now`, fenced by sequence, so racing the live refresher is
harmless). At most `DOCS_PER_RUN` documents are examined per run, in id order from where the last
run stopped (`job_states.cursor`), so every document is reached however many there are.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import structlog

from bus.doc_usage import doc_id_of, subject_counts
from core.errors import AppError, Unavailable
from models.repo import doc_content as content_repo
from models.repo import job_runs
from services.documents import refresh_projection_now
from services.snapshot_job import is_uuid
from services.ydoc_roots import ContentError

if TYPE_CHECKING:
    from services.deps import Deps

log = structlog.get_logger(__name__)

INDEX_JOB = "index_document_for_search"
INDEX_EVERY_S = 60.0
DOCS_PER_RUN = 100


async def index_stale_documents(ctx: Deps) -> dict[str, int]:
    in_log = sorted(
        d for d in map(doc_id_of, await subject_counts(ctx.nats)) if d is not None and is_uuid(d)
    )
    after = await job_runs.get_cursor(ctx.db, INDEX_JOB) or ""
    batch = [d for d in in_log if d > after][:DOCS_PER_RUN]
    if not batch and after:
        batch = in_log[:DOCS_PER_RUN]
    projected = await content_repo.live_projection_seqs(ctx.db, batch) if batch else {}
    refreshed = failed = 0
    for doc_id, seq in projected.items():
        if await ctx.doc_log.last_seq(doc_id) <= seq:
            continue
        try:
            await refresh_projection_now(ctx, doc_id)
            refreshed += 1
        except Unavailable:
            raise
        except (ContentError, AppError) as err:
            # One unreadable document must not stop the sweep; `collab verify` reports it.
            log.warning("search.catchup_failed", doc_id=doc_id, error=repr(err))
            failed += 1
    full = len(batch) == DOCS_PER_RUN
    await job_runs.set_cursor(ctx.db, INDEX_JOB, batch[-1] if full else None)
    return {"documents_checked": len(projected), "reindexed": refreshed, "failed": failed}
