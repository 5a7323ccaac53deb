"""The CRDT content model: JSON view, block projection, restore diffs that converge (pycrdt + Yjs)."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pycrdt
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pycrdt import Array, Doc, Map, Text

from services.doc_content import (
    ContentError,
    load_doc,
    make_restore_update,
    project_blocks,
    state_vector,
    to_json,
)
from services.doc_state import merge
from tests.yjs_client import ensure_node_modules

JS_DIR = Path(__file__).parent / "js"


def add_block(doc: Doc, block_id: str, text: str, *, parent: str | None = None, **props) -> None:
    blocks = doc.get("blocks", type=Map)
    with doc.transaction():
        blocks[block_id] = Map(
            {"type": "paragraph", "props": Map(props), "text": Text(text), "children": Array()}
        )
        siblings = blocks[parent]["children"] if parent else doc.get("root", type=Array)
        siblings.append(block_id)


def sample_doc() -> Doc:
    doc = Doc()
    add_block(doc, "b1", "hello 😀 world", align="left")
    add_block(doc, "b2", "child", parent="b1", done=False)
    add_block(doc, "b3", "second")
    doc.get("text", type=Text).insert(0, "generic")
    doc.get("meta", type=Map)["title"] = "Sample"
    doc.get("array", type=Array).extend([1, "two"])
    doc.get("map", type=Map)["n"] = 3
    return doc


def edit(doc: Doc) -> bytes:
    """Many kinds of change at once: text, marks, props, moves, deletes, new blocks, roots."""
    before = doc.get_state()
    blocks = doc.get("blocks", type=Map)
    with doc.transaction():
        blocks["b1"]["text"].insert(0, "XX ")
        blocks["b1"]["text"].format(0, 2, {"bold": True})
        blocks["b1"]["props"]["align"] = "right"
        blocks["b1"]["children"].pop(0)
        del blocks["b2"]
        blocks["b4"] = Map({"type": "h1", "props": Map(), "text": Text("new"), "children": Array()})
        doc.get("root", type=Array).insert(0, "b4")
        doc.get("text", type=Text).insert(7, " text")
        doc.get("meta", type=Map)["title"] = "Changed"
        doc.get("array", type=Array).append(Map({"k": "v"}))
        del doc.get("map", type=Map)["n"]
    return doc.get_update(before)


def content(doc: Doc) -> dict:
    return to_json(doc.get_update())


def run_yjs(updates: list[bytes]) -> dict:
    """Apply updates in a real Yjs doc (tests/js/apply_updates.mjs)."""
    ensure_node_modules()  # a clean checkout has no tests/js/node_modules yet
    proc = subprocess.run(
        ["node", "apply_updates.mjs"],
        input=json.dumps({"updates": [u.hex() for u in updates]}),
        capture_output=True,
        text=True,
        cwd=JS_DIR,
        timeout=30,
        check=True,
    )
    return json.loads(proc.stdout)


# --- reading ---------------------------------------------------------------------------------


def test_to_json_shows_block_tree_and_generic_roots():
    body = content(sample_doc())
    assert body == {
        "meta": {"title": "Sample"},
        "blocks": [
            {
                "id": "b1",
                "type": "paragraph",
                "props": {"align": "left"},
                "text": "hello 😀 world",
                "children": [
                    {
                        "id": "b2",
                        "type": "paragraph",
                        "props": {"done": False},
                        "text": "child",
                        "children": [],
                    }
                ],
            },
            {"id": "b3", "type": "paragraph", "props": {}, "text": "second", "children": []},
        ],
        "text": "generic",
        "map": {"n": 3},
        "array": [1, "two"],
    }


def test_empty_and_malformed_states():
    empty = {"meta": {}, "blocks": [], "text": "", "map": {}, "array": []}
    assert to_json(b"") == empty
    assert to_json(b"\x00\x00") == empty
    with pytest.raises(ContentError):
        to_json(b"\xff\xff\xff garbage")
    with pytest.raises(ContentError):
        state_vector(b"\x05\x01")


def test_cycles_duplicates_orphans_and_foreign_shapes_are_tolerated():
    doc = Doc()
    add_block(doc, "a", "A")
    add_block(doc, "b", "B", parent="a")
    blocks = doc.get("blocks", type=Map)
    with doc.transaction():
        blocks["b"]["children"].append("a")  # cycle a → b → a
        doc.get("root", type=Array).extend(["b", "missing", 7])  # duplicate, dangling, not an id
        blocks["orphan"] = Map(
            {"type": "x", "props": Map(), "text": Text("o"), "children": Array()}
        )
        blocks["odd"] = "not a map"
        doc.get("root", type=Array).append("odd")
    tree = content(doc)["blocks"]
    assert [n["id"] for n in tree] == ["a", "odd"]
    assert [n["id"] for n in tree[0]["children"]] == ["b"]
    assert tree[0]["children"][0]["children"] == []
    assert tree[1] == {"id": "odd", "type": "unknown", "props": {}, "text": "", "children": []}


def test_projection_rows_have_parent_position_depth_and_path():
    rows = project_blocks(sample_doc().get_update())
    by_id = {r.block_id: r for r in rows}
    assert [r.block_id for r in rows] == ["b1", "b2", "b3"]
    assert (by_id["b2"].parent_id, by_id["b2"].position, by_id["b2"].depth) == ("b1", 0, 1)
    assert by_id["b2"].path == ["b1", "b2"]
    assert (by_id["b3"].parent_id, by_id["b3"].position, by_id["b3"].depth) == (None, 1, 0)
    assert by_id["b1"].content == {"props": {"align": "left"}, "text": "hello 😀 world"}


# --- restore diffs ---------------------------------------------------------------------------


def test_restore_update_converges_clients_to_the_target():
    author = sample_doc()
    target = author.get_update()
    edit(author)
    current = author.get_update()
    diff = make_restore_update(current, target)

    client = load_doc(current)
    client.apply_update(diff)
    assert content(client) == to_json(target)
    # The history is kept: the restore is a newer state, not a replacement.
    assert len(client.get_update()) > len(target)
    # The server-side merge (snapshot path) agrees with a client applying it.
    assert to_json(merge([current, diff])) == to_json(target)


def test_restore_does_not_duplicate_for_a_client_with_older_history():
    author = sample_doc()
    target = author.get_update()
    offline = load_doc(target)  # a client that saw only the old state
    edit(author)
    current = author.get_update()
    diff = make_restore_update(current, target)
    offline.apply_update(diff)  # before it catches up: the diff waits for its dependencies
    offline.apply_update(current)
    assert content(offline) == to_json(target)


def test_restore_keeps_concurrent_edits_and_all_clients_converge():
    author = sample_doc()
    target = author.get_update()
    edit(author)
    current = author.get_update()
    a, b = load_doc(current), load_doc(current)
    before = b.get_state()
    b.get("blocks", type=Map)["b3"]["text"].insert(0, "concurrent ")
    concurrent = b.get_update(before)
    diff = make_restore_update(current, target)
    a.apply_update(diff)
    a.apply_update(concurrent)
    b.apply_update(diff)
    assert _clients(a.get_update()) == _clients(b.get_update())  # encoding order varies
    assert content(a) == content(b)
    assert content(a)["blocks"][-1]["text"] == "concurrent second"


def test_restore_uses_a_fresh_client_id_each_time():
    author = sample_doc()
    target = author.get_update()
    edit(author)
    current = author.get_update()
    first = make_restore_update(current, target)
    second = make_restore_update(current, target)
    ids_first = set(_clients(merge([current, first]))) - set(_clients(current))
    ids_second = set(_clients(merge([current, second]))) - set(_clients(current))
    assert len(ids_first) == 1 and len(ids_second) == 1 and ids_first != ids_second


def _clients(update: bytes) -> dict[int, int]:
    doc = load_doc(update)
    decoder = pycrdt.Decoder(doc.get_state())
    count = decoder.read_var_uint()
    return {decoder.read_var_uint(): decoder.read_var_uint() for _ in range(count)}


def test_restore_to_identical_content_changes_nothing():
    current = sample_doc().get_update()
    diff = make_restore_update(current, current)
    assert to_json(merge([current, diff])) == to_json(current)
    assert _clients(merge([current, diff])) == _clients(current)


def test_restore_restores_marks_and_embeds():
    doc = Doc()
    text = doc.get("text", type=Text)
    text.insert(0, "plain bold")
    text.format(6, 10, {"bold": True})
    target = doc.get_update()
    text.format(0, 10, {"italic": True, "bold": None})
    text.insert_embed(5, {"image": "x.png"})
    current = doc.get_update()
    client = load_doc(current)
    client.apply_update(make_restore_update(current, target))
    assert client.get("text", type=Text).diff() == load_doc(target).get("text", type=Text).diff()


def test_restore_converges_in_real_yjs():
    author = sample_doc()
    target = author.get_update()
    edit(author)
    current = author.get_update()
    diff = make_restore_update(current, target)
    result = run_yjs([current, diff])
    assert result["pending"] is False
    assert to_json(bytes.fromhex(result["state"])) == to_json(target)
    assert result["root"] == ["b1", "b3"]
    assert result["blocks"]["b1"]["text"] == "hello 😀 world"
    assert result["meta"] == {"title": "Sample"}


# --- property: any two states of one history restore into each other -----------------------

OPS = st.lists(
    st.tuples(
        st.sampled_from(["add", "type", "delete", "move", "prop", "root_text", "meta"]),
        st.integers(min_value=0, max_value=50),
        st.text(alphabet="ab😀é \n", max_size=6),
    ),
    max_size=12,
)


def apply_ops(doc: Doc, ops: list[tuple[str, int, str]]) -> None:
    blocks = doc.get("blocks", type=Map)
    root = doc.get("root", type=Array)
    for op, n, s in ops:
        ids = list(root)
        with doc.transaction():
            if op == "add" or not ids:
                block_id = f"k{n}-{len(blocks)}"
                if block_id not in blocks:
                    blocks[block_id] = Map(
                        {"type": "p", "props": Map(), "text": Text(s), "children": Array()}
                    )
                    root.insert(n % (len(ids) + 1), block_id)
                continue
            target = ids[n % len(ids)]
            entry = blocks[target]
            if op == "type":
                text = entry["text"]
                text.insert(len(str(text).encode()) if n % 2 else 0, s)
            elif op == "delete":
                root.pop(ids.index(target))
                del blocks[target]
            elif op == "move":
                root.pop(ids.index(target))
                root.insert(n % len(ids), target)
            elif op == "prop":
                entry["props"][f"p{n % 3}"] = s or None
            elif op == "root_text":
                doc.get("text", type=Text).insert(0, s)
            else:
                doc.get("meta", type=Map)["title"] = s


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(OPS, OPS)
def test_any_past_state_restores(first, second):
    doc = Doc()
    apply_ops(doc, first)
    target = doc.get_update()
    apply_ops(doc, second)
    current = doc.get_update()
    client = load_doc(current)
    client.apply_update(make_restore_update(current, target))
    assert content(client) == to_json(target)
