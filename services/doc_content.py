"""A document's content as JSON and as projection rows: the block tree plus every other root.

Pure functions over Yjs v1 updates (no I/O), shared by REST, versions, the snapshot job and tests.

The content model is the one real editors write (DESIGN.md §5): the block tree lives in a
`Y.XmlFragment` written by `y-prosemirror` — BlockNote's document (`services/block_tree.py`) or a
generic ProseMirror/Tiptap one. Which fragment is the document's is a setting
(`COLLAB_CONTENT_FRAGMENT`, default `prosemirror`, the name BlockNote's own Yjs utilities use) that
a document can override (`documents.fragment`, e.g. `default` for Tiptap's Collaboration
extension, `document-store` for La Suite Docs). When that fragment is absent and the doc holds
exactly one other fragment, that one is read (a Tiptap document shows its blocks without any
configuration). Every root — the fragment included — is also shown under `roots` with its type, so
nothing a client writes is invisible (`services/ydoc_roots.py`).

Types: the content (`to_json`) is open JSON on purpose: BlockNote's blocks and whatever roots a
client wrote (see `services/block_tree.py` and `services/ydoc_roots.py`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pycrdt

from core.yjs import ProtocolError, call_pycrdt
from models.repo.doc_content import BlockRow
from services.block_tree import Block, Layout, read_blocks, walk
from services.crdt_diff import RootTypeConflict, fresh_client_id, make_restore_update
from services.ydoc_roots import (
    EMPTY_UPDATES,
    ContentError,
    RootKind,
    Roots,
    bind_roots,
    load_doc,
    roots_json,
)

__all__ = [
    "DEFAULT_FRAGMENT",
    "BlockRow",
    "ContentError",
    "RootTypeConflict",
    "Tree",
    "block_rows",
    "block_tree",
    "choose_fragment",
    "fresh_client_id",
    "load_doc",
    "make_restore_update",
    "project_blocks",
    "state_vector",
    "to_json",
]

DEFAULT_FRAGMENT = "prosemirror"


@dataclass(frozen=True)
class Tree:
    """The block tree of a loaded doc: which fragment it came from, its layout, its blocks."""

    roots: Roots
    fragment: str | None
    layout: Layout
    blocks: list[Block]


def choose_fragment(roots: Roots, preferred: str) -> str | None:
    """The document's fragment: `preferred` when it is one, else the only fragment there is."""
    fragments = roots.named(RootKind.XML_FRAGMENT)
    if preferred in fragments:
        return preferred
    if preferred not in roots.kinds and len(fragments) == 1:
        return fragments[0]
    return None


def block_tree(roots: Roots, preferred: str) -> Tree:
    name = choose_fragment(roots, preferred)
    if name is None:
        return Tree(roots, None, Layout.EMPTY, [])
    layout, blocks = read_blocks(roots.get(name))
    return Tree(roots, name, layout, blocks)


def to_json(update: bytes, fragment: str = DEFAULT_FRAGMENT) -> dict[str, Any]:
    """The document's content as JSON (the `content` of GET /documents/{id} and of versions)."""
    roots = bind_roots(update)
    tree = block_tree(roots, fragment)
    return {
        "fragment": tree.fragment or fragment,
        "layout": tree.layout.value,
        "blocks": [block.to_json() for block in tree.blocks],
        "roots": roots_json(roots),
    }


def project_blocks(update: bytes, fragment: str = DEFAULT_FRAGMENT) -> list[BlockRow]:
    """The blocks as rows of the Postgres projection, in document order.

    A block id seen twice (two clients pasted the same block concurrently) keeps its first
    occurrence: the projection's key is (document, block id)."""
    return block_rows(block_tree(bind_roots(update), fragment))


def block_rows(tree: Tree) -> list[BlockRow]:
    """`project_blocks` of a tree already read (the refresher reads it once for rows and anchors)."""
    rows: list[BlockRow] = []
    seen: set[str] = set()
    for block, parent, position, path in walk(tree.blocks):
        if block.id in seen:
            continue
        seen.add(block.id)
        rows.append(
            BlockRow(
                block_id=block.id,
                parent_id=parent.id if parent is not None else None,
                position=position,
                depth=len(path) - 1,
                path=path,
                type=block.type,
                content={"props": block.props, "content": block.content},
                text=block.text,
            )
        )
    return rows


def state_vector(update: bytes) -> bytes:
    """The state vector of a stored state (kept next to snapshots for sync step 1 answers)."""
    if update in EMPTY_UPDATES:
        return b"\x00"
    try:
        return call_pycrdt("state vector", pycrdt.get_state, update)
    except ProtocolError as err:
        raise ContentError(f"not a valid Yjs update: {err}") from err
