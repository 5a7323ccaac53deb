"""The CRDT content model: the block tree of BlockNote / Tiptap fragments, every root as JSON,
the projection, and restore diffs over every root type that converge (pycrdt + real Yjs)."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pycrdt
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pycrdt import Array, Doc, Map, Text, XmlElement, XmlFragment, XmlText

from core.yjs import EMPTY_UPDATE, merge
from services.doc_content import (
    ContentError,
    RootTypeConflict,
    load_doc,
    make_restore_update,
    project_blocks,
    state_vector,
    to_json,
)
from tests.content_docs import (
    PARAGRAPH_PROPS,
    blocknote_doc,
    blocknote_group,
    bn_block,
    child_group,
    tiptap_doc,
)
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
    """A BlockNote fragment plus generic roots of every type (the old `blocks`/`root` map layout
    among them: now ordinary Map/Array roots)."""
    doc = blocknote_doc()
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
    group = blocknote_group(doc)
    with doc.transaction():
        heading = group.children[0].children[0]
        heading.attributes["level"] = 3
        heading.children[0].insert(0, "New ")
        paragraph_text = group.children[1].children[0].children[0]
        paragraph_text.format(0, 5, {"italic": {}})
        del group.children[1].children[1]  # the child block c1 with its group
        del group.children[2]  # the image
        bn_block(group, "n1", [("added", {"bold": {}})])
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


def run_yjs(updates: list[bytes], fragments: list[str] | None = None) -> dict:
    """Apply updates in a real Yjs doc (tests/js/apply_updates.mjs)."""
    ensure_node_modules()  # a clean checkout has no tests/js/node_modules yet
    proc = subprocess.run(
        ["node", "apply_updates.mjs"],
        input=json.dumps({"updates": [u.hex() for u in updates], "fragments": fragments or []}),
        capture_output=True,
        text=True,
        cwd=JS_DIR,
        timeout=30,
        check=True,
    )
    return json.loads(proc.stdout)


# --- reading ---------------------------------------------------------------------------------


def test_blocknote_fragment_reads_as_a_block_tree():
    body = content(blocknote_doc())
    assert (body["fragment"], body["layout"]) == ("prosemirror", "blocknote")
    h1, p1, i1 = body["blocks"]
    assert h1 == {
        "id": "h1",
        "type": "heading",
        "props": {**PARAGRAPH_PROPS, "level": 2},
        "content": [{"type": "text", "text": "Title", "styles": {}}],
        "text": "Title",
        "children": [],
    }
    assert p1["content"] == [
        {"type": "text", "text": "Hello ", "styles": {}},
        {"type": "text", "text": "bold", "styles": {"bold": True, "textColor": "red"}},
        {
            "type": "link",
            "href": "https://example.org",
            "content": [{"type": "text", "text": "site", "styles": {}}],
        },
        {"type": "text", "text": "\n", "styles": {}},
        {"type": "mention", "props": {"user": "u-1"}},
        {"type": "text", "text": "end", "styles": {}},
    ]
    assert p1["text"] == "Hello boldsite\nend"
    assert [c["id"] for c in p1["children"]] == ["c1"]
    assert p1["children"][0]["props"]["checked"] is True
    # An image has no content in BlockNote's schema (x-content "none"): no `content` key.
    assert i1["type"] == "image" and "content" not in i1
    assert i1["props"]["url"] == "https://example.org/a.png"


def test_generic_tiptap_fragment_reads_with_positional_ids():
    doc = tiptap_doc()
    body = to_json(doc.get_update())  # `prosemirror` absent, one fragment: `default` is read
    assert (body["fragment"], body["layout"]) == ("default", "prosemirror")
    heading, paragraph, bullets = body["blocks"]
    assert (heading["id"], heading["type"], heading["props"]) == ("0", "heading", {"level": 1})
    assert paragraph["content"][1] == {"type": "text", "text": "italic", "styles": {"italic": True}}
    assert [item["id"] for item in bullets["children"]] == ["2.0", "2.1"]
    assert bullets["children"][1]["children"][0]["text"] == "two"


def test_every_root_is_shown_with_its_type_whatever_its_name():
    doc = blocknote_doc(name="text")  # a fragment under a name plain clients use for Text
    doc.get("prosemirror", type=Text).insert(0, "a text named like a fragment")
    doc.get("meta", type=Map)["title"] = "Sample"
    doc.get("root", type=Array).extend(["b1", 2])
    formatted = doc.get("notes", type=Text)
    formatted.insert(0, "plain bold")
    formatted.format(6, 10, {"bold": True})
    body = content(doc)
    roots = body["roots"]
    assert roots["text"]["type"] == "xml_fragment"
    assert roots["text"]["value"]["content"][0]["type"] == "blockGroup"
    assert roots["prosemirror"] == {"type": "text", "value": "a text named like a fragment"}
    assert roots["meta"] == {"type": "map", "value": {"title": "Sample"}}
    assert roots["root"] == {"type": "array", "value": ["b1", 2]}
    assert roots["notes"]["delta"][1] == {
        "type": "text",
        "text": "bold",
        "marks": [{"type": "bold"}],
    }
    # `prosemirror` is a Text here, so no block tree is claimed from another fragment.
    assert (body["layout"], body["blocks"]) == ("empty", [])
    assert to_json(doc.get_update(), "text")["layout"] == "blocknote"


def test_fragment_json_is_prosemirror_json():
    value = content(tiptap_doc())["roots"]["default"]["value"]
    assert value["type"] == "doc"
    assert value["content"][1] == {
        "type": "paragraph",
        "content": [
            {"type": "text", "text": "plain "},
            {"type": "text", "text": "italic", "marks": [{"type": "italic", "attrs": {}}]},
        ],
    }


def test_empty_and_malformed_states():
    empty = {"fragment": "prosemirror", "layout": "empty", "blocks": [], "roots": {}}
    assert to_json(b"") == empty
    assert to_json(b"\x00\x00") == empty
    with pytest.raises(ContentError):
        to_json(b"\xff\xff\xff garbage")
    with pytest.raises(ContentError):
        state_vector(b"\x05\x01")


def test_projection_rows_have_parent_position_depth_path_and_text():
    rows = project_blocks(blocknote_doc().get_update())
    by_id = {r.block_id: r for r in rows}
    assert [r.block_id for r in rows] == ["h1", "p1", "c1", "i1"]
    assert (by_id["c1"].parent_id, by_id["c1"].position, by_id["c1"].depth) == ("p1", 0, 1)
    assert by_id["c1"].path == ["p1", "c1"]
    assert (by_id["i1"].parent_id, by_id["i1"].position, by_id["i1"].depth) == (None, 2, 0)
    assert by_id["h1"].content["props"]["level"] == 2
    assert by_id["p1"].text == "Hello boldsite\nend"


def test_projection_keeps_the_first_of_two_blocks_with_one_id():
    doc = blocknote_doc()
    bn_block(blocknote_group(doc), "h1", [("pasted twice", None)])
    rows = project_blocks(doc.get_update())
    assert [r.block_id for r in rows].count("h1") == 1
    assert rows[0].text == "Title"


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
    blocks = content(a)["roots"]["blocks"]["value"]
    assert blocks["b3"]["text"] == "concurrent second"


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
    result = run_yjs([current, diff], fragments=["prosemirror"])
    assert result["pending"] is False
    assert result["xml"]["prosemirror"] == run_yjs([target], ["prosemirror"])["xml"]["prosemirror"]
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
    assert_restores_across(Doc(), apply_ops, first, second)


def assert_restores_across(doc: Doc, apply, first, second) -> None:  # type: ignore[no-untyped-def]
    """Edit `first`, keep the state, edit `second`: restoring the kept state must give it back."""
    apply(doc, first)
    target = doc.get_update()
    apply(doc, second)
    current = doc.get_update()
    client = load_doc(current)
    client.apply_update(make_restore_update(current, target))
    assert content(client) == to_json(target)


# --- restore over fragments and roots of any type --------------------------------------------


def test_restore_of_an_unchanged_document_is_an_empty_update():
    current = sample_doc().get_update()
    assert make_restore_update(current, current) == EMPTY_UPDATE


def test_restore_edits_blocks_in_place_so_concurrent_typing_inside_survives():
    author = blocknote_doc()
    target = author.get_update()
    before = author.get_state()
    paragraph_text = blocknote_group(author).children[1].children[0].children[0]
    paragraph_text.insert(0, "edited ")
    current = merge([target, author.get_update(before)])
    typist = load_doc(current)
    before = typist.get_state()
    typist_text = blocknote_group(typist).children[1].children[0].children[0]
    typist_text.insert(len(str(typist_text).encode()), "!")  # typed while the restore ran
    typed = typist.get_update(before)
    diff = make_restore_update(current, target)
    merged = content(load_doc(merge([current, typed, diff])))
    p1 = merged["blocks"][1]
    assert p1["id"] == "p1"  # the same container, not a deleted one and a copy
    assert p1["content"][0]["text"] == "Hello "  # the restored text ...
    assert p1["text"] == "Hello boldsite!\nend"  # ... and the concurrent keystroke


def test_restore_empties_roots_the_version_did_not_have():
    doc = blocknote_doc()
    target = doc.get_update()
    doc.get("later", type=Map)["k"] = "v"
    doc.get("notes", type=Text).insert(0, "written after the version")
    current = doc.get_update()
    restored = to_json(merge([current, make_restore_update(current, target)]))
    assert restored["blocks"] == to_json(target)["blocks"]
    assert "later" not in restored["roots"] and "notes" not in restored["roots"]


def test_restore_refuses_a_root_whose_type_changed():
    as_text = Doc()
    as_text.get("body", type=Text).insert(0, "text")
    as_fragment = Doc()
    as_fragment.get("body", type=XmlFragment).children.append(XmlElement("paragraph"))
    with pytest.raises(RootTypeConflict) as err:
        make_restore_update(as_text.get_update(), as_fragment.get_update())
    assert err.value.name == "body"


FRAGMENT_OPS = st.lists(
    st.tuples(
        st.sampled_from(["add", "type", "bold", "delete", "move", "attr", "nest", "root"]),
        st.integers(min_value=0, max_value=50),
        st.text(alphabet="ab😀é \n", max_size=6),
    ),
    max_size=10,
)


def _containers(doc: Doc) -> list[XmlElement]:
    """Every blockContainer, depth first."""
    found: list[XmlElement] = []
    stack = [blocknote_group(doc)]
    while stack:
        group = stack.pop()
        for container in group.children:
            found.append(container)
            stack.extend(c for c in container.children if c.tag == "blockGroup")
    return found


def apply_fragment_ops(doc: Doc, ops: list[tuple[str, int, str]]) -> None:
    for op, n, s in ops:
        containers = _containers(doc)
        with doc.transaction():
            if op == "add" or not containers:
                bn_block(blocknote_group(doc), f"k{n}-{len(containers)}", [(s or "x", None)])
                continue
            container = containers[n % len(containers)]
            node = container.children[0]
            if op in ("type", "bold") and not len(node.children):
                node.children.append(XmlText())
            if op == "type":
                node.children[0].insert(0, s)
            elif op == "bold":
                text = node.children[0]
                text.format(0, len(str(text).encode()), {"bold": {}} if n % 2 else {"bold": None})
            elif op == "delete":
                parent = container.parent
                del parent.children[list(parent.children).index(container)]
                if not len(parent.children) and parent.tag == "blockGroup" and parent.parent:
                    grand = parent.parent
                    if isinstance(grand, XmlElement):
                        del grand.children[1]
            elif op == "move":
                label = f"moved-{n}-{len(containers)}"
                moved = str(node.children[0]) if len(node.children) else s
                bn_block(blocknote_group(doc), label, [(moved or "m", None)])
            elif op == "attr":
                node.attributes["textAlignment"] = ["left", "center", "right"][n % 3]
            elif op == "nest":
                bn_block(child_group(container), f"c{n}-{len(containers)}", [(s or "c", None)])
            else:
                doc.get("text", type=Text).insert(0, s)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(FRAGMENT_OPS, FRAGMENT_OPS)
def test_any_past_fragment_state_restores(first, second):
    assert_restores_across(blocknote_doc(), apply_fragment_ops, first, second)


def test_restore_of_an_unchanged_document_with_deletions_is_an_empty_update():
    """Yjs puts the whole delete set into every update: equality is decided before diffing."""
    doc = sample_doc()
    edit(doc)  # deletes blocks, map keys and characters
    current = doc.get_update()
    assert make_restore_update(current, current) == EMPTY_UPDATE
