"""Where a comment anchor is in a document's current content: its block, and the text between
its two Yjs relative positions (pure functions over a loaded doc; no I/O).

Relative positions are the client's, as `Y.relativePositionToJSON` gives them (item ids of the
characters at the range's ends); pycrdt resolves them against the current doc
(`StickyIndex.from_json`), following deletions the way Yjs does.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from pycrdt import Decoder, Doc, StickyIndex, XmlElement, XmlFragment, XmlText

from core.yjs import ProtocolError, call_pycrdt
from services.block_tree import Block, walk
from services.doc_content import Tree, block_tree
from services.ydoc_roots import bind_roots, load_doc


@dataclass
class Content:
    """A document's blocks by id, with what it takes to probe where a position is."""

    state: bytes
    fragment: str | None
    blocks: dict[str, Block]
    # Per block: a copy of the doc where the block's text node k got k + 1 marks in front.
    _probes: dict[str, Doc] = field(default_factory=dict)

    def probe(self, block: Block, texts: list[XmlText]) -> Doc:
        if block.id not in self._probes:
            self._probes[block.id] = _marked_copy(self.state, self.fragment or "", texts)
        return self._probes[block.id]


def content_of(state: bytes, fragment: str) -> Content:
    """The document's blocks (raises `ContentError` for an unreadable state)."""
    return content_of_tree(state, block_tree(bind_roots(state), fragment))


def content_of_tree(state: bytes, tree: Tree) -> Content:
    """`content_of` for a tree already read from `state`."""
    blocks = {block.id: block for block, _parent, _pos, _path in walk(tree.blocks)}
    return Content(state, tree.fragment, blocks)


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


def _clocks(doc: Doc) -> dict[int, int]:
    """client id → next clock: what the doc has integrated (its state vector)."""
    decoder = Decoder(doc.get_state())
    return {
        decoder.read_var_uint(): decoder.read_var_uint() for _ in range(decoder.read_var_uint())
    }


def _known(position: dict[str, Any], clocks: dict[int, int]) -> bool:
    """Whether the doc has the item and the type the position names (pycrdt panics on an id it
    does not have: a client's update still on its way, or a made-up id)."""
    for key in ("item", "type"):
        ref = position.get(key)
        if ref is not None and ref["clock"] >= clocks.get(ref["client"], 0):
            return False
    return True


def _resolve(position: dict[str, Any], doc: Doc) -> int | None:
    """The index of `position` in its own text node of `doc` (pycrdt follows a deleted end to
    where it was); None if the doc does not know it."""
    if not _known(position, _clocks(doc)):
        return None

    def resolve() -> int:
        with doc.transaction() as txn:
            return StickyIndex.from_json(_clean(position)).get_index(txn)

    try:
        return call_pycrdt("sticky index", resolve)
    except (ProtocolError, RuntimeError):
        return None


def _path(node: XmlText | XmlElement) -> list[int]:
    """Child indices from the root fragment down to `node`."""
    path: list[int] = []
    current: Any = node
    while current.parent is not None:
        path.append(list(current.parent.children).index(current))
        current = current.parent
    return path[::-1]


def _marked_copy(state: bytes, fragment: str, texts: list[XmlText]) -> Doc:
    copy = load_doc(state)
    root: Any = copy.get(fragment, type=XmlFragment)
    targets = []
    for text in texts:
        node = root
        for index in _path(text):
            node = list(node.children)[index]
        targets.append(node)
    with copy.transaction():
        for k, target in enumerate(targets):
            target.insert(0, "#" * (k + 1))
    return copy


def _locate(
    content: Content, block: Block, texts: list[XmlText], position: dict[str, Any]
) -> tuple[int, int] | None:
    """(which of the block's text nodes, index in it) of `position`, or None if it is not in
    this block. Relative positions do not name their text node and pycrdt makes no sticky index
    of an `XmlText`, so the node is found by probing: in a copy of the doc the block's text node k
    gets k + 1 characters in front, and a position in node k moves by exactly k + 1."""
    before = _resolve(position, texts[0].doc)
    after = _resolve(position, content.probe(block, texts))
    if before is None or after is None:
        return None
    k = after - before - 1
    if not 0 <= k < len(texts) or not 0 <= before <= len(texts[k]):
        return None
    return k, before


def quote(content: Content, block: Block, start: dict[str, Any], end: dict[str, Any]) -> str | None:
    """The text between the two positions in the block now (the text nodes between them
    joined: inline nodes such as mentions are left out), or None if it cannot be told."""
    texts = _text_nodes(block)
    if not texts:
        return None
    first, last = _locate(content, block, texts, start), _locate(content, block, texts, end)
    if first is None or last is None or last < first:
        return None
    if first[0] == last[0]:
        return _plain(texts[first[0]])[first[1] : last[1]]
    pieces = [_plain(texts[first[0]])[first[1] :]]
    pieces += [_plain(texts[k]) for k in range(first[0] + 1, last[0])]
    pieces.append(_plain(texts[last[0]])[: last[1]])
    return "".join(pieces)


def anchor_of(content: Content, thread: dict[str, Any]) -> tuple[str, str | None]:
    """(state, quoted text) of one thread against the document's current content."""
    block = content.blocks.get(thread["block_id"])
    if block is None:
        return "orphaned", thread["quoted_text"]
    if thread["anchor_start"] is None or thread["anchor_end"] is None:
        return "anchored", thread["quoted_text"]
    quoted = quote(content, block, thread["anchor_start"], thread["anchor_end"])
    return "anchored", thread["quoted_text"] if quoted is None else quoted
