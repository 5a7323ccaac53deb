"""The difference between two states of a document, block by block (pure).

Blocks are matched by id (BlockNote ids are stable; generic blocks without ids use positional
ids, so there an insertion above reads as changes below). The result:

* `added` / `removed`: blocks present on one side only (with their parent, position, type, text);
* `moved`: blocks whose parent changed, or whose order among the siblings they share on both
  sides changed (a block shifted only because others were added or removed above it is not moved);
* `changed`: blocks whose type, props or content differ, with the changed props (`from`/`to`),
  and a character diff of their text (`[{"op": "equal"|"insert"|"delete", "text"}]`) when the
  text differs (`content_changed` alone means only styles, links or inline nodes changed);
* `roots`: roots other than the block fragment that were added, removed or changed.

Types: the report is JSON for the API (`VersionDiffSchema`): its blocks are BlockNote's block JSON,
open on purpose (see `services/block_tree.py`).
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass
from typing import Any

from services.block_tree import Block, walk
from services.doc_content import block_tree
from services.ydoc_roots import bind_roots, roots_json

# Beyond this many cells (len(a) × len(b)) a block's text diff is one delete + one insert.
MAX_TEXT_DIFF_CELLS = 1_000_000


@dataclass(frozen=True)
class _Placed:
    block: Block
    parent_id: str | None
    position: int


def _index(blocks: list[Block]) -> dict[str, _Placed]:
    placed: dict[str, _Placed] = {}
    for block, parent, position, _path in walk(blocks):
        placed.setdefault(block.id, _Placed(block, parent.id if parent else None, position))
    return placed


def _summary(placed: _Placed) -> dict[str, Any]:
    return {
        "id": placed.block.id,
        "type": placed.block.type,
        "parent_id": placed.parent_id,
        "position": placed.position,
        "text": placed.block.text,
    }


def text_diff(old: str, new: str) -> list[dict[str, str]]:
    if len(old) * len(new) > MAX_TEXT_DIFF_CELLS:
        return [{"op": "delete", "text": old}, {"op": "insert", "text": new}]
    ops: list[dict[str, str]] = []
    matcher = difflib.SequenceMatcher(None, old, new, autojunk=False)
    for tag, i1, i2, j1, j2 in matcher.get_opcodes():
        if tag == "equal":
            ops.append({"op": "equal", "text": old[i1:i2]})
            continue
        if i2 > i1:
            ops.append({"op": "delete", "text": old[i1:i2]})
        if j2 > j1:
            ops.append({"op": "insert", "text": new[j1:j2]})
    return ops


def _change(old: Block, new: Block) -> dict[str, Any] | None:
    change: dict[str, Any] = {"id": new.id}
    if old.type != new.type:
        change["type"] = {"from": old.type, "to": new.type}
    props = {
        key: {"from": old.props.get(key), "to": new.props.get(key)}
        for key in sorted(set(old.props) | set(new.props))
        if old.props.get(key) != new.props.get(key)
    }
    if props:
        change["props"] = props
    if old.text != new.text:
        change["text"] = text_diff(old.text, new.text)
    elif old.content != new.content:
        change["content_changed"] = True
    return change if len(change) > 1 else None


def _moved(before: dict[str, _Placed], after: dict[str, _Placed]) -> list[dict[str, Any]]:
    common = [i for i in after if i in before]
    moved = {i for i in common if before[i].parent_id != after[i].parent_id}
    by_parent: dict[str | None, list[str]] = {}
    for block_id in common:
        if block_id not in moved:
            by_parent.setdefault(after[block_id].parent_id, []).append(block_id)
    for siblings in by_parent.values():
        old_order = sorted(siblings, key=lambda i: before[i].position)
        new_order = sorted(siblings, key=lambda i: after[i].position)
        matcher = difflib.SequenceMatcher(None, old_order, new_order, autojunk=False)
        kept = {old_order[b.a + k] for b in matcher.get_matching_blocks() for k in range(b.size)}
        moved.update(i for i in siblings if i not in kept)
    return [
        {
            "id": block_id,
            "from": {
                "parent_id": before[block_id].parent_id,
                "position": before[block_id].position,
            },
            "to": {"parent_id": after[block_id].parent_id, "position": after[block_id].position},
        }
        for block_id in after
        if block_id in moved
    ]


def diff_states(old_state: bytes, new_state: bytes, fragment: str) -> dict[str, Any]:
    old_roots, new_roots = bind_roots(old_state), bind_roots(new_state)
    old_tree, new_tree = block_tree(old_roots, fragment), block_tree(new_roots, fragment)
    before, after = _index(old_tree.blocks), _index(new_tree.blocks)
    changes = [
        change
        for block_id, placed in after.items()
        if block_id in before and (change := _change(before[block_id].block, placed.block))
    ]
    skip = {old_tree.fragment, new_tree.fragment}
    old_json = {k: v for k, v in roots_json(old_roots).items() if k not in skip}
    new_json = {k: v for k, v in roots_json(new_roots).items() if k not in skip}
    return {
        "fragment": new_tree.fragment or old_tree.fragment or fragment,
        "blocks": {
            "added": [_summary(p) for i, p in after.items() if i not in before],
            "removed": [_summary(p) for i, p in before.items() if i not in after],
            "moved": _moved(before, after),
            "changed": changes,
        },
        "roots": {
            "added": sorted(set(new_json) - set(old_json)),
            "removed": sorted(set(old_json) - set(new_json)),
            "changed": sorted(
                k for k in set(old_json) & set(new_json) if old_json[k] != new_json[k]
            ),
        },
    }
