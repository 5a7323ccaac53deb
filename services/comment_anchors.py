"""Comment anchors tracked by the server: `anchored` while the block exists, `orphaned` when it
is gone, and the quoted text read again from the Yjs relative positions.

It runs where the server already learns of every content change: the `blocks` projection
(`services/projection.py`), which every kind of edit reaches within seconds — a live editor's
update (the projection refresher, on the node that published it), a REST block operation and a
restore (`refresh_projection_now` after their write), the snapshot job. The anchors are computed
with the projection, in the projection worker (`services/projection_compute.py`), from the
threads' positions read before the projection's transaction; they are written in that
transaction and only when the projection moved to a newer stream sequence (the projection row's
fence), and a thread's event is emitted only when its state or quote really changed
(compare-and-set on the row): so once per change, never once per node or per refresh. A block
that comes back (undo, version restore: same block id) makes its threads `anchored` again.

Where an anchor is in the content is `services/anchor_text.py`; a quote that cannot be read again
(see `anchor_text.quote`) is left as it was.
"""

from __future__ import annotations

from typing import Any

import structlog

from models.db import Executor
from models.repo import comments as repo
from services.comments import CommentChange, Scope, load_thread
from services.policy import Resource
from services.projection_compute import AnchorInput, AnchorResult
from services.unit_of_work import UnitOfWork

log = structlog.get_logger(__name__)

Anchors = dict[str, tuple[AnchorInput, AnchorResult]]


async def anchor_inputs(db: Executor, doc_id: str) -> list[AnchorInput]:
    """The document's anchored threads as the projection worker reads them (before the
    projection's transaction: computing their anchors takes the CPU time)."""
    return [
        AnchorInput(str(r["id"]), r["block_id"], r["anchor_start"], r["anchor_end"])
        for r in await repo.anchor_positions(db, doc_id)
    ]


def _input_of(thread: dict[str, Any]) -> AnchorInput:
    return AnchorInput(
        str(thread["id"]), thread["block_id"], thread["anchor_start"], thread["anchor_end"]
    )


async def follow_content(uow: UnitOfWork, doc_id: str, seq: int, anchors: Anchors) -> int:
    """In the transaction that moved the document's projection to `seq`: bring its threads'
    anchors up to date (as computed from the content at `seq`) and emit `thread.anchor_changed`
    for each that changed; returns how many.

    A thread created after the anchors were computed is left alone: its creation placed it in
    the content as it was then (`comments._anchor_now`), and the next projection includes it."""
    if not anchors:
        return 0
    threads = await repo.anchored_threads(uow.conn, doc_id)  # locked until the commit
    changed = 0
    for thread in threads:
        computed = anchors.get(str(thread["id"]))
        if computed is None or computed[0] != _input_of(thread):
            continue
        anchor_state = computed[1].state
        quoted = thread["quoted_text"] if computed[1].quoted is None else computed[1].quoted
        if (anchor_state, quoted) == (thread["anchor_state"], thread["quoted_text"]):
            continue
        thread_id = str(thread["id"])
        if not await repo.set_anchor(uow.conn, thread_id, anchor_state, quoted, seq):
            continue  # a newer content already set it
        change = CommentChange(
            uow,
            Scope(Resource.document(doc_id), document_id=doc_id),
            str(thread["workspace_id"]),
            None,
        )
        await change.emit(
            "thread.anchor_changed", thread_id, await load_thread(uow.conn, thread_id)
        )
        changed += 1
    if changed:
        log.info("anchors.changed", doc_id=doc_id, seq=seq, threads=changed)
    return changed
