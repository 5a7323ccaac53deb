"""Block edits as CRDT transactions on a BlockNote fragment (pure: bytes in, a Yjs diff out).

Each edit loads the current state into a doc with a fresh random client id, changes the fragment
the way BlockNote's editor would (same node structure, same attributes: a new block gets its
type's default props, as ProseMirror fills them in, which y-prosemirror then writes), and returns
`doc.get_update(state_vector_before)`: an ordinary Yjs update on the live history, so connected
editors apply it like a collaborator's keystrokes and their concurrent edits merge.

* **create**: a `blockContainer` (with content node and optional children) under a parent block
  (its nested `blockGroup`, made if missing) or at the top level, after/before a sibling or last.
* **update**: type, props (merged, as BlockNote's `updateBlock` merges them) and/or content. The
  content node is edited in place when the type stays, so a user typing in the block at the same
  moment keeps their characters; a new type replaces the content node (ProseMirror cannot rename
  a node either). The block's children are never touched.
* **move**: delete + insert of the container (that is what a move is in Yjs and in BlockNote's
  drag and drop), checked against moving a block under itself or a descendant.
* **delete**: the container with its children; an emptied nested `blockGroup` goes too (BlockNote's
  schema requires `blockGroupChild+`), and an emptied document keeps one empty paragraph, as
  BlockNote's editor does.

Bad input raises `BlockEditError` (field → messages) before anything is written.

Types: blocks come in as BlockNote's JSON (plain dicts), open on purpose: validated against the
editor's JSON Schema (`services/block_schema.py`) before they reach this module.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from pycrdt import Doc, XmlElement, XmlFragment, XmlText

from services.block_schema import content_kind, inline_prop_defaults, prop_defaults
from services.block_tree import BLOCK_CONTAINER, BLOCK_GROUP, HARD_BREAK, Layout, layout_of
from services.crdt_diff import fingerprint, fresh_client_id, insert_node, sync_xml
from services.ydoc_roots import EMPTY_UPDATE, RootKind, bind_roots

# Block ids BlockNote generates are UUIDs; this is only the server's own choice for new blocks.
NEW_ID_BYTES = 16


class BlockEditError(ValueError):
    """Refused edit; `fields` names what was wrong (field path → messages)."""

    def __init__(self, message: str, fields: dict[str, list[str]], *, status: int = 400) -> None:
        super().__init__(message)
        self.fields = fields
        self.status = status


class NotABlockTree(BlockEditError):
    """The document's fragment holds something else than BlockNote blocks (409)."""


class BlockNotFound(BlockEditError):
    """No block with that id in the document (404)."""


@dataclass(frozen=True)
class Place:
    """Where a block goes: under `parent_id` (None: top level), after or before a sibling."""

    parent_id: str | None = None
    after: str | None = None
    before: str | None = None


@dataclass
class _Tree:
    doc: Doc
    fragment: XmlFragment

    @property
    def root_group(self) -> XmlElement:
        for child in self.fragment.children:
            if isinstance(child, XmlElement) and child.tag == BLOCK_GROUP:
                return child
        return self.fragment.children.append(XmlElement(BLOCK_GROUP))

    def containers(self) -> Iterator[XmlElement]:
        """Every block element (containers, columns), depth first."""
        stack = [self.root_group]
        while stack:
            group = stack.pop()
            for node in group.children:
                if not isinstance(node, XmlElement):
                    continue
                if node.tag == BLOCK_GROUP:
                    stack.append(node)
                    continue
                yield node
                stack.extend(c for c in node.children if isinstance(c, XmlElement))

    def find(self, block_id: str, field: str = "block_id") -> XmlElement:
        for node in self.containers():
            if node.attributes.get("id") == block_id:
                return node
        raise BlockNotFound("no such block", {field: ["no block with this id"]}, status=404)


def new_block_id() -> str:
    return secrets.token_hex(NEW_ID_BYTES // 2)


def _open(state: bytes, fragment: str) -> _Tree:
    roots = bind_roots(state, client_id=fresh_client_id())
    kind = roots.kinds.get(fragment)
    if kind is not None and kind is not RootKind.XML_FRAGMENT:
        raise NotABlockTree(
            "the document's fragment root holds another type",
            {"fragment": [f"{fragment!r} is a {kind.value}, not an XmlFragment"]},
            status=409,
        )
    tree = _Tree(roots.doc, roots.doc.get(fragment, type=XmlFragment))
    if layout_of(tree.fragment) is Layout.PROSEMIRROR:
        raise NotABlockTree(
            "the document's fragment is not a BlockNote block tree",
            {"fragment": [f"{fragment!r} holds generic ProseMirror nodes, not BlockNote blocks"]},
            status=409,
        )
    return tree


def _edit(state: bytes, fragment: str, change: Callable[[_Tree], None]) -> bytes:
    """Run `change` in one transaction; the diff, or EMPTY_UPDATE when the content is the same
    (a delete-only edit moves no state vector, so content is compared, not clocks)."""
    tree = _open(state, fragment)
    before_state = tree.doc.get_state()
    before = fingerprint(tree.fragment)
    with tree.doc.transaction(origin="rest"):
        change(tree)
    if fingerprint(tree.fragment) == before:
        return EMPTY_UPDATE
    return tree.doc.get_update(before_state)


# --- building nodes from BlockNote JSON ----------------------------------------------------


def _marks(styles: dict[str, Any], href: str | None) -> dict[str, Any] | None:
    marks: dict[str, Any] = {}
    for name, value in styles.items():
        if value is True:
            marks[name] = {}
        elif isinstance(value, str):
            marks[name] = {"stringValue": value}
    if href is not None:
        marks["link"] = {"href": href}
    return marks or None


def _inline_items(content: Any) -> Iterator[tuple[dict[str, Any], str | None]]:
    """(item, link href) for BlockNote partial inline content: a string, or a list of strings,
    styled text and links; other items are inline nodes."""
    if isinstance(content, str):
        yield {"type": "text", "text": content, "styles": {}}, None
        return
    for item in content or []:
        if isinstance(item, str):
            yield {"type": "text", "text": item, "styles": {}}, None
        elif item.get("type") == "link":
            for inner, _ in _inline_items(item.get("content", [])):
                yield inner, item["href"]
        else:
            yield item, None


def _fill_inline(node: XmlElement, content: Any, *, plain: bool) -> None:
    """Append inline content to a (detached-doc) content node: XmlText runs with marks, hard
    breaks (`\\n` outside plain-text blocks, as BlockNote's blockToNode splits them), nodes."""
    text: XmlText | None = None
    for item, href in _inline_items(content):
        if item.get("type") != "text":
            text = None
            kind = str(item["type"])
            props = {**inline_prop_defaults(kind), **(item.get("props") or {})}
            node.children.append(XmlElement(kind, props))
            continue
        parts = [item["text"]] if plain else item["text"].split("\n")
        for index, part in enumerate(parts):
            if index:
                text = None
                node.children.append(XmlElement(HARD_BREAK))
            if not part:
                continue
            if text is None:
                text = node.children.append(XmlText())
            text.insert(len(text), part, _marks(item.get("styles") or {}, href))


def _fill_table(node: XmlElement, table: dict[str, Any]) -> None:
    for row in table.get("rows", []):
        row_node = node.children.append(XmlElement("tableRow"))
        for cell in row.get("cells", []):
            cell_content = cell.get("content", []) if isinstance(cell, dict) else cell
            props = dict(cell.get("props") or {}) if isinstance(cell, dict) else {}
            attrs = {"colspan": 1, "rowspan": 1, **prop_defaults_of_cell(), **props}
            cell_node = row_node.children.append(XmlElement("tableCell", attrs))
            _fill_inline(
                cell_node.children.append(XmlElement("tableParagraph")), cell_content, plain=False
            )


def prop_defaults_of_cell() -> dict[str, Any]:
    """What BlockNote 0.55 writes on a table cell besides colspan/rowspan."""
    return {"backgroundColor": "default", "textAlignment": "left", "textColor": "default"}


def _content_node(parent: XmlElement | XmlFragment, block: dict[str, Any]) -> XmlElement:
    """The typed content node (tag = type; attributes = the type's defaults, then the props)."""
    kind = block["type"]
    attrs = {**prop_defaults(kind), **(block.get("props") or {})}
    node = parent.children.append(XmlElement(kind, attrs))
    content = block.get("content")
    what = content_kind(kind)
    if what == "table" and isinstance(content, dict):
        _fill_table(node, content)
    elif what in ("inline", "plain") and content is not None:
        _fill_inline(node, content, plain=what == "plain")
    return node


def build_container(parent: XmlElement | XmlFragment, block: dict[str, Any]) -> XmlElement:
    """A blockContainer for a (validated) BlockNote block, appended to `parent`."""
    container = parent.children.append(XmlElement(BLOCK_CONTAINER, {"id": block["id"]}))
    _content_node(container, block)
    children = block.get("children") or []
    if children:
        group = container.children.append(XmlElement(BLOCK_GROUP))
        for child in children:
            build_container(group, child)
    return container


def scratch_fragment() -> XmlFragment:
    """A fragment in a throwaway doc: nodes are built there, then copied into the live doc by
    `insert_node` / `sync_xml` (which write them on the live history with the edit's client id)."""
    scratch: Doc = Doc()
    return scratch.get("scratch", type=XmlFragment)


def new_document_state(blocks: list[dict[str, Any]], fragment: str) -> bytes:
    """A whole document holding `blocks` (validated, ids filled in), as one Yjs update from an
    empty state: what an imported document's log starts with."""
    doc: Doc = Doc(client_id=fresh_client_id())
    with doc.transaction(origin="rest"):
        group = doc.get(fragment, type=XmlFragment).children.append(XmlElement(BLOCK_GROUP))
        for block in blocks:
            build_container(group, block)
    return doc.get_update()


def _scratch_container(block: dict[str, Any]) -> XmlElement:
    return build_container(scratch_fragment(), block)


# --- placing -------------------------------------------------------------------------------


def _child_group(container: XmlElement, *, create: bool) -> XmlElement | None:
    for child in container.children:
        if isinstance(child, XmlElement) and child.tag == BLOCK_GROUP:
            return child
    return container.children.append(XmlElement(BLOCK_GROUP)) if create else None


def _index_in(group: XmlElement, node: XmlElement) -> int:
    for index, child in enumerate(group.children):
        if isinstance(child, XmlElement) and child.attributes.get("id") == node.attributes.get(
            "id"
        ):
            return index
    raise AssertionError("node not in its parent group")


def _sibling_index(tree: _Tree, group: XmlElement, sibling_id: str, field: str) -> int:
    for index, child in enumerate(group.children):
        if isinstance(child, XmlElement) and child.attributes.get("id") == sibling_id:
            return index
    tree.find(sibling_id, field)  # 404 if it does not exist at all
    raise BlockEditError(
        "the sibling is not a child of that parent", {field: ["not a child of the given parent"]}
    )


def _target_group(tree: _Tree, place: Place) -> tuple[XmlElement, int]:
    """(group, index) a block placed at `place` is inserted at."""
    if place.after is not None and place.before is not None:
        raise BlockEditError(
            "give after or before, not both", {"before": ["only one of after/before"]}
        )
    if place.parent_id is None:
        group = tree.root_group
    else:
        parent = tree.find(place.parent_id, "parent_id")
        if parent.tag != BLOCK_CONTAINER:
            raise BlockEditError(
                "blocks nest in blocks", {"parent_id": ["cannot hold child blocks"]}
            )
        existing = _child_group(parent, create=False)
        if existing is None:
            if place.after is not None or place.before is not None:
                field = "after" if place.after is not None else "before"
                tree.find(place.after or place.before or "", field)
                raise BlockEditError(
                    "the parent has no children yet", {field: ["not a child of the given parent"]}
                )
            created = _child_group(parent, create=True)
            assert created is not None
            return created, 0
        group = existing
    if place.after is not None:
        return group, _sibling_index(tree, group, place.after, "after") + 1
    if place.before is not None:
        return group, _sibling_index(tree, group, place.before, "before")
    return group, len(group.children)


def _remove(tree: _Tree, container: XmlElement) -> None:
    """Delete a block; drop a nested group it leaves empty; keep one block in the document."""
    group = container.parent
    assert isinstance(group, XmlElement)
    del group.children[_index_in(group, container)]
    if len(group.children):
        return
    owner = group.parent
    if isinstance(owner, XmlElement) and owner.tag == BLOCK_CONTAINER:
        del owner.children[_group_index(owner)]
    elif owner is not None and not isinstance(owner, XmlElement):
        build_container(group, {"id": new_block_id(), "type": "paragraph"})


def _group_index(owner: XmlElement) -> int:
    for index, child in enumerate(owner.children):
        if isinstance(child, XmlElement) and child.tag == BLOCK_GROUP:
            return index
    raise AssertionError("no group")


def _is_within(tree: _Tree, node: XmlElement, ancestor_id: str) -> bool:
    current: Any = node
    while isinstance(current, XmlElement):
        if current.attributes.get("id") == ancestor_id:
            return True
        current = current.parent
    return False


# --- the edits ------------------------------------------------------------------------------


def create_block(state: bytes, fragment: str, block: dict[str, Any], place: Place) -> bytes:
    """Insert a validated block (ids filled in) at `place`."""

    def change(tree: _Tree) -> None:
        for block_id in _ids(block):
            if any(n.attributes.get("id") == block_id for n in tree.containers()):
                raise BlockEditError(
                    "block id taken", {"id": [f"{block_id!r} already exists"]}, status=409
                )
        group, index = _target_group(tree, place)
        insert_node(group, index, _scratch_container(block))

    return _edit(state, fragment, change)


def _ids(block: dict[str, Any]) -> Iterator[str]:
    yield block["id"]
    for child in block.get("children") or []:
        yield from _ids(child)


def update_block(state: bytes, fragment: str, block_id: str, new: dict[str, Any]) -> bytes:
    """`new` is the block's whole new {type, props, content} (the service merged the patch)."""

    def change(tree: _Tree) -> None:
        container = tree.find(block_id)
        if container.tag != BLOCK_CONTAINER:
            raise BlockEditError(
                "not a content block", {"block_id": [f"a {container.tag} has no content"]}
            )
        node = container.children[0]
        assert isinstance(node, XmlElement)
        target = _content_node(scratch_fragment(), new)
        if node.tag == new["type"]:
            sync_xml(node, target)
        else:
            del container.children[0]
            insert_node(container, 0, target)

    return _edit(state, fragment, change)


def move_block(state: bytes, fragment: str, block_id: str, place: Place) -> bytes:
    def change(tree: _Tree) -> None:
        container = tree.find(block_id)
        if place.parent_id is not None:
            parent = tree.find(place.parent_id, "parent_id")
            if _is_within(tree, parent, block_id):
                raise BlockEditError(
                    "a block cannot move under itself",
                    {"parent_id": ["is the block itself or one of its descendants"]},
                )
        for field, sibling in (("after", place.after), ("before", place.before)):
            if sibling == block_id:
                raise BlockEditError(
                    "a block cannot be placed next to itself", {field: ["is the block itself"]}
                )
        copy = _scratch_copy(container)
        _remove(tree, container)
        group, index = _target_group(tree, place)
        insert_node(group, index, copy)

    return _edit(state, fragment, change)


def _scratch_copy(container: XmlElement) -> XmlElement:
    holder = scratch_fragment()
    insert_node(holder, 0, container)
    copied = holder.children[0]
    assert isinstance(copied, XmlElement)
    return copied


def delete_block(state: bytes, fragment: str, block_id: str) -> bytes:
    def change(tree: _Tree) -> None:
        _remove(tree, tree.find(block_id))

    return _edit(state, fragment, change)
