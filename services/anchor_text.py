"""Where a comment anchor is in a document's current content: its block, and the text between
its two Yjs relative positions (pure functions over a loaded doc; no I/O).

Relative positions are the client's, as `Y.relativePositionToJSON` gives them (item ids of the
characters at the range's ends); pycrdt resolves them against the current doc
(`StickyIndex.from_json`), following deletions the way Yjs does.
"""

from __future__ import annotations

from typing import Any

from pycrdt import StickyIndex, XmlText

from core.yjs import ProtocolError, call_pycrdt
from services.block_tree import Block, walk
from services.doc_content import block_tree
from services.ydoc_roots import bind_roots


def blocks_of(state: bytes, fragment: str) -> dict[str, Block]:
    """Every block of the document by id (raises `ContentError` for an unreadable state)."""
    tree = block_tree(bind_roots(state), fragment)
    return {block.id: block for block, _parent, _pos, _path in walk(tree.blocks)}


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
