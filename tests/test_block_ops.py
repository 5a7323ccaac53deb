"""Block edits and the block diff as pure functions over BlockNote-shaped fragments (the same
shapes y-prosemirror writes; tests/test_blocks_api.py drives them with a real editor)."""

from __future__ import annotations

import pytest

from core.yjs import merge
from services import block_ops
from services.block_diff import diff_states, text_diff
from services.block_ops import BlockEditError, BlockNotFound, NotABlockTree, Place
from services.doc_content import to_json
from tests.content_docs import blocknote_doc, tiptap_doc

FRAGMENT = "prosemirror"


def apply(state: bytes, diff: bytes) -> bytes:
    return merge([state, diff])


def tree(state: bytes) -> list:
    def shape(blocks: list[dict]) -> list:
        return [[b["id"], shape(b["children"])] if b["children"] else b["id"] for b in blocks]

    return shape(to_json(state)["blocks"])


def test_delete_keeps_blocknotes_schema_valid():
    state = blocknote_doc().get_update()
    state = apply(state, block_ops.delete_block(state, FRAGMENT, "c1"))
    assert tree(state) == ["h1", "p1", "i1"]  # the emptied child group went with it
    for block_id in ("h1", "p1", "i1"):
        state = apply(state, block_ops.delete_block(state, FRAGMENT, block_id))
    blocks = to_json(state)["blocks"]
    assert [(b["type"], b["text"]) for b in blocks] == [("paragraph", "")]  # one empty block left


def test_create_under_a_parent_without_children_and_at_the_top():
    state = blocknote_doc().get_update()
    child = {"id": "k1", "type": "paragraph", "content": "kid"}
    state = apply(state, block_ops.create_block(state, FRAGMENT, child, Place(parent_id="h1")))
    first = {"id": "k0", "type": "quote", "content": "first"}
    state = apply(state, block_ops.create_block(state, FRAGMENT, first, Place(before="h1")))
    assert tree(state) == ["k0", ["h1", ["k1"]], ["p1", ["c1"]], "i1"]


def test_update_keeps_children_and_changes_type():
    state = blocknote_doc().get_update()
    new = {"type": "quote", "props": {}, "content": "quoted"}
    state = apply(state, block_ops.update_block(state, FRAGMENT, "p1", new))
    p1 = to_json(state)["blocks"][1]
    assert (p1["type"], p1["text"], [c["id"] for c in p1["children"]]) == (
        "quote",
        "quoted",
        ["c1"],
    )


def test_unchanged_update_is_an_empty_diff():
    """Written back from its own JSON (mention, hard break, link, styles), a block is unchanged."""
    state = blocknote_doc().get_update()
    for block in (to_json(state)["blocks"][1], to_json(state)["blocks"][1]["children"][0]):
        same = {"type": block["type"], "props": block["props"], "content": block["content"]}
        assert block_ops.update_block(state, FRAGMENT, block["id"], same) == b"\x00\x00"


def test_refusals():
    state = blocknote_doc().get_update()
    with pytest.raises(BlockNotFound):
        block_ops.delete_block(state, FRAGMENT, "nope")
    with pytest.raises(BlockEditError) as err:
        block_ops.move_block(state, FRAGMENT, "p1", Place(parent_id="c1"))
    assert "parent_id" in err.value.fields
    with pytest.raises(NotABlockTree):
        block_ops.delete_block(tiptap_doc("prosemirror").get_update(), FRAGMENT, "0")


def test_diff_lists_moves_only_for_reordered_blocks():
    old = blocknote_doc().get_update()
    new = apply(old, block_ops.move_block(old, FRAGMENT, "i1", Place(before="h1")))
    new = apply(new, block_ops.delete_block(new, FRAGMENT, "c1"))
    diff = diff_states(old, new, FRAGMENT)
    assert [m["id"] for m in diff["blocks"]["moved"]] == ["i1"]
    assert [r["id"] for r in diff["blocks"]["removed"]] == ["c1"]
    assert diff["blocks"]["added"] == [] and diff["blocks"]["changed"] == []


def test_text_diff_ops():
    assert text_diff("hello world", "hello brave world") == [
        {"op": "equal", "text": "hello "},
        {"op": "insert", "text": "brave "},
        {"op": "equal", "text": "world"},
    ]
