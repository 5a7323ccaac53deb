"""Finding body mentions in a document's state: pure functions over Yjs updates (no I/O).

What a mention is, and why an update that cannot touch one is never read, is explained in
services/body_mentions.py, which records and notifies what these find. They are apart from it so
the projection worker (services/projection_compute.py) can run them without importing the
notification, policy and Postgres code.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator, Sequence
from typing import Any

from core.yjs import merge
from services.block_tree import Block, walk
from services.doc_content import block_tree
from services.ydoc_roots import bind_roots

MENTION_NODE = "mention"
USER_PROP = "user"
# Bytes an update holds when it creates a mention node or changes its `user` attribute.
_TOUCH_MARKERS = (MENTION_NODE.encode(), USER_PROP.encode())

Pair = tuple[str, str]  # (block id, user id)


def canonical_uuid(value: Any) -> str | None:
    try:
        return str(uuid.UUID(value)) if isinstance(value, str) else None
    except ValueError:
        return None


def _mentioned(content: Any) -> Iterator[str]:
    """User ids of the mention nodes in a block's content (inline runs, links, table cells)."""
    if isinstance(content, dict):  # a table
        for row in content.get("rows", []):
            for cell in row.get("cells", []):
                yield from _mentioned(cell.get("content") if isinstance(cell, dict) else cell)
        return
    for item in content if isinstance(content, list) else []:
        if not isinstance(item, dict):
            continue
        if item.get("type") == MENTION_NODE:
            user = canonical_uuid((item.get("props") or {}).get(USER_PROP))
            if user is not None:
                yield user
        elif isinstance(item.get("content"), list):
            yield from _mentioned(item["content"])


def mentions_in(blocks: list[Block]) -> dict[Pair, Block]:
    """Every (block id, user id) mention of a block tree, with its block."""
    found: dict[Pair, Block] = {}
    for block, _parent, _position, _path in walk(blocks):
        for user in _mentioned(block.content):
            found.setdefault((block.id, user), block)
    return found


def mention_texts(blocks: list[Block]) -> dict[Pair, str]:
    """`mentions_in` with each block's plain text (the notification's excerpt): plain data, as
    the projection worker hands it back."""
    return {pair: block.text for pair, block in mentions_in(blocks).items()}


def read_mentions(update: bytes, fragment: str) -> dict[Pair, Block]:
    return mentions_in(block_tree(bind_roots(update), fragment).blocks)


def may_touch_mentions(update: bytes) -> bool:
    return any(marker in update for marker in _TOUCH_MARKERS)


def first_seen(
    base: bytes, updates: Sequence[bytes], fragment: str, wanted: set[Pair]
) -> dict[Pair, int]:
    """For each wanted pair, the index of the first update after which the document holds it,
    replayed from `base`; the document is read only after updates that may touch mentions."""
    found: dict[Pair, int] = {}
    state, pending = base, []
    for index, update in enumerate(updates):
        pending.append(update)
        if not may_touch_mentions(update):
            continue
        state, pending = merge([state, *pending]), []
        for pair in (wanted & read_mentions(state, fragment).keys()) - found.keys():
            found[pair] = index
        if len(found) == len(wanted):
            break
    return found
