"""Comment anchors tracked by the server: `anchored` while the block exists, `orphaned` when it
is gone, and the quoted text read again from the Yjs relative positions.

It runs where the server already learns of every content change: the `blocks` projection
(`services/snapshots.refresh_projection`), which every kind of edit reaches within seconds — a
live editor's update (the projection refresher, one node per update through its NATS queue
group), a REST block operation and a restore (`refresh_projection_now` after their write), the
snapshot job. It runs in the projection's transaction and only when the projection moved to a
newer stream sequence (the projection row's fence), and a thread's event is emitted only when its
state or quote really changed (compare-and-set on the row): so once per change, never once per
node or per refresh. A block that comes back (undo, version restore: same block id) makes its
threads `anchored` again.

Where an anchor is in the content is `services/anchor_text.py`; a quote that cannot be read again
(see `anchor_text.quote`) is left as it was.
"""

from __future__ import annotations

import structlog

from models.repo import comments as repo
from services.anchor_text import anchor_of, content_of_tree
from services.comments import CommentChange, Scope, load_thread
from services.doc_content import Tree
from services.policy import Resource
from services.unit_of_work import UnitOfWork

log = structlog.get_logger(__name__)


async def follow_content(uow: UnitOfWork, doc_id: str, seq: int, state: bytes, tree: Tree) -> int:
    """In the transaction that moved the document's projection to `seq`: bring its threads'
    anchors up to date and emit `thread.anchor_changed` for each that changed; returns how many."""
    threads = await repo.anchored_threads(uow.conn, doc_id)
    if not threads:
        return 0
    content = content_of_tree(state, tree)
    changed = 0
    for thread in threads:
        anchor_state, quoted = anchor_of(content, thread)
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
