"""The projection's CPU work, as the worker process runs it (services/projection_worker.py).

Loading a large state into pycrdt takes seconds and holds the GIL (bench/FINDINGS.md §6.1), so
what a refresh reads from the state is computed here, in one call per refresh: the block rows,
where each comment thread's anchor is now, and the body mentions. Bytes and plain values go in,
plain values come out (frozen dataclasses, tuples, dicts: picklable), so the same functions run
in the worker and in-process. The module imports only what reading a Yjs state needs: the worker
never loads the web, bus, policy or notification code.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from core.yjs import merge
from models.repo.doc_content import BlockRow
from services.anchor_text import anchor_of, content_of_tree
from services.doc_content import Tree, block_rows, block_tree
from services.mention_finder import Pair, first_seen, mention_texts
from services.ydoc_roots import EMPTY_UPDATES, bind_roots, load_doc


@dataclass(frozen=True)
class AnchorInput:
    """What places one comment thread in the content: its block and its two Yjs relative
    positions (services/anchor_text.py)."""

    thread_id: str
    block_id: str
    start: dict[str, Any] | None
    end: dict[str, Any] | None


@dataclass(frozen=True)
class AnchorResult:
    state: str  # "anchored" | "orphaned"
    quoted: str | None  # None: the quote cannot be read again; the stored one stays


@dataclass(frozen=True)
class Projection:
    """What one state projects to, for the fragment `fragment` (the one asked for)."""

    fragment: str
    rows: list[BlockRow]
    anchors: dict[str, tuple[AnchorInput, AnchorResult]]  # by thread id
    mentions: dict[Pair, str]  # (block id, user id) → the block's plain text


def compacted(state: bytes) -> bytes:
    """`state` as re-encoded by a doc that loaded it: the same content, loaded in milliseconds.

    A state merged from many small updates (`merge_updates`, which snapshots and `load_state`
    use so that pending structs survive) keeps every update's items apart, and yrs takes seconds
    and GBs to load one: 100k scattered one-character inserts in 4.8k runs are 2.1 MB that load
    in 4 s with 4.4 GB of RSS, while the same document re-encoded is 0.26 MB and loads in 3 ms.
    A projection loads its state several times (the root-kind probes, the bound doc, one copy per
    anchored block): once slowly here, then fast. The pending structs the re-encoding leaves out
    are invisible in a loaded doc anyway, so what is read is the same."""
    if state in EMPTY_UPDATES:
        return state
    return load_doc(state).get_update()


def project(state: bytes, fragment: str, threads: list[AnchorInput]) -> Projection:
    """The projection of `state` (raises `ContentError` for an unreadable one); the tree is read
    once for rows, anchors and mentions."""
    state = compacted(state)
    tree = block_tree(bind_roots(state), fragment)
    anchors = _anchors(state, tree, threads) if threads else {}
    return Projection(fragment, block_rows(tree), anchors, mention_texts(tree.blocks))


def _anchors(
    state: bytes, tree: Tree, threads: list[AnchorInput]
) -> dict[str, tuple[AnchorInput, AnchorResult]]:
    content = content_of_tree(state, tree)
    found = {}
    for thread in threads:
        # No stored quote goes in, so a None quote out means "cannot tell": the writer keeps
        # whatever quote the row holds when it writes (services/comment_anchors.py).
        row = {
            "block_id": thread.block_id,
            "anchor_start": thread.start,
            "anchor_end": thread.end,
            "quoted_text": None,
        }
        found[thread.thread_id] = (thread, AnchorResult(*anchor_of(content, row)))
    return found


def mentions_of(state: bytes, fragment: str) -> dict[Pair, str]:
    """The body mentions of `state` alone (a scan not handed a projection's)."""
    return mention_texts(block_tree(bind_roots(compacted(state)), fragment).blocks)


def first_mentioned(
    base: list[bytes], updates: list[bytes], fragment: str, wanted: set[Pair]
) -> dict[Pair, int]:
    """`mention_finder.first_seen` replayed from the merge of `base` (the state a scan's cursor
    left: merging it is CPU work too)."""
    return first_seen(merge(base), updates, fragment, wanted)
