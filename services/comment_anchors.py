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

Relative positions are the client's, as `Y.relativePositionToJSON` gives them (item ids of the
characters at the range's ends); pycrdt resolves them against the current doc
(`StickyIndex.from_json`), following deletions the way Yjs does. A quote that cannot be read
again (see `quote`) is left as it was.
"""

from __future__ import annotations

from typing import Any

import structlog
from pycrdt import StickyIndex, XmlText

from core.yjs import ProtocolError, call_pycrdt
from models.repo import comments as repo
from services.block_tree import Block, walk
from services.comments import CommentChange, Scope, load_thread
from services.doc_content import ContentError, block_tree
from services.policy import Resource
from services.unit_of_work import UnitOfWork
from services.ydoc_roots import bind_roots

log = structlog.get_logger(__name__)

# An embedded object inside a text node counts as one position (as in Yjs).
EMBED = "\ufffc"


def _text_nodes(block: Block) -> list[XmlText]:
    node = block.content_element
    if node is None:
        return []
    return [child for child in node.children if isinstance(child, XmlText)]


def _plain(text: XmlText) -> str:
    return "".join(chunk if isinstance(chunk, str) else EMBED for chunk, _ in text.diff())


def _clean(position: dict[str, Any]) -> dict[str, Any]:
    return {key: value for key, value in position.items() if value is not None}


def _index_in(position: dict[str, Any], text: XmlText) -> int | None:
    """Where `position` is in `text` now (pycrdt follows a deleted end to where it was)."""

    def resolve() -> int:
        with text.doc.transaction() as txn:
            return StickyIndex.from_json(_clean(position)).get_index(txn)

    try:
        index = call_pycrdt("sticky index", resolve)
    except (ProtocolError, RuntimeError):
        return None
    return index if 0 <= index <= len(text) else None


def quote(block: Block, start: dict[str, Any], end: dict[str, Any]) -> str | None:
    """The text between the two positions in the block now, or None if it cannot be told.

    Relative positions do not say which text node they are in, and pycrdt cannot make a sticky
    index of an `XmlText` to compare with: so the quote is read only from a block whose inline
    content is one text node (text with marks is one node; a mention or a hard break splits it).
    """
    texts = _text_nodes(block)
    if len(texts) != 1:
        return None
    first, last = _index_in(start, texts[0]), _index_in(end, texts[0])
    if first is None or last is None:
        return None
    return _plain(texts[0])[first : max(first, last)]


def anchor_of(blocks: dict[str, Block], thread: dict[str, Any]) -> tuple[str, str | None]:
    """(state, quoted text) of one thread against the document's current blocks."""
    block = blocks.get(thread["block_id"])
    if block is None:
        return "orphaned", thread["quoted_text"]
    if thread["anchor_start"] is None or thread["anchor_end"] is None:
        return "anchored", thread["quoted_text"]
    quoted = quote(block, thread["anchor_start"], thread["anchor_end"])
    return "anchored", thread["quoted_text"] if quoted is None else quoted


async def follow_content(
    uow: UnitOfWork, doc_id: str, seq: int, state: bytes, fragment: str
) -> int:
    """In the transaction that moved the document's projection to `seq`: bring its threads'
    anchors up to date and emit `thread.anchor_changed` for each that changed; returns how many."""
    threads = await repo.anchored_threads(uow.conn, doc_id)
    if not threads:
        return 0
    try:
        tree = block_tree(bind_roots(state), fragment)
    except ContentError as err:
        log.error("anchors.unreadable_state", doc_id=doc_id, seq=seq, error=repr(err))
        return 0
    blocks = {block.id: block for block, _parent, _pos, _path in walk(tree.blocks)}
    changed = 0
    for thread in threads:
        anchor_state, quoted = anchor_of(blocks, thread)
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
