"""A document's `blocks` projection (with its comment anchors): computed off the loop, written
in a short transaction.

The computing (`compute_projection`) is CPU work on the whole state -- seconds for a large
document -- and runs in the projection worker (services/projection_worker.py); it reads what it
needs from Postgres first (the document's fragment, its anchored threads) but holds no
transaction. The writing (`write_projection`) is the part that needs one: the fenced
`replace_blocks` (a newer projection wins) and the anchors. A REST write, a restore and the
refresher compute, then open a unit of work only for the write (`documents.refresh_projection_now`);
the snapshot job does both inside the snapshot's own transaction (`refresh_projection`), where
the projection must be of the state it saves.
"""

from __future__ import annotations

import structlog

from models.db import Executor
from models.repo import doc_content as content_repo
from models.repo import documents as documents_repo
from services import comment_anchors
from services.projection_compute import Projection, project
from services.projection_worker import ProjectionWorker
from services.unit_of_work import UnitOfWork
from services.ydoc_roots import ContentError

log = structlog.get_logger(__name__)


async def compute_projection(
    worker: ProjectionWorker,
    db: Executor,
    doc_id: str,
    seq: int,
    state: bytes,
    default_fragment: str,
) -> Projection | None:
    """The projection of `state` (covering `seq`); None for a state that cannot be read (logged:
    the projection stays as it was). Raises `ProjectionUnavailable` if the worker fails."""
    fragment = await documents_repo.get_fragment(db, doc_id) or default_fragment
    threads = await comment_anchors.anchor_inputs(db, doc_id)
    try:
        return await worker.run(project, state, fragment, threads)
    except ContentError as err:
        log.error("projection.unreadable_state", doc_id=doc_id, seq=seq, error=repr(err))
        return None


async def write_projection(uow: UnitOfWork, doc_id: str, seq: int, projection: Projection) -> bool:
    """Install `projection` (of the state at `seq`) unless a newer one exists; when it moved,
    the comment anchors follow in the same transaction (`comment_anchors`)."""
    if not await content_repo.replace_blocks(uow.conn, doc_id, seq, projection.rows):
        return False
    await comment_anchors.follow_content(uow, doc_id, seq, projection.anchors)
    return True


async def refresh_projection(
    uow: UnitOfWork,
    worker: ProjectionWorker,
    doc_id: str,
    seq: int,
    state: bytes,
    default_fragment: str,
) -> bool:
    """Compute and write in `uow`'s transaction (the snapshot's); False if nothing was written."""
    projection = await compute_projection(worker, uow.conn, doc_id, seq, state, default_fragment)
    return projection is not None and await write_projection(uow, doc_id, seq, projection)
