"""The block tree inside a document's `Y.XmlFragment`, as BlockNote and Tiptap write it.

Pure functions over a pycrdt fragment (no I/O). Two layouts are read, decided by the fragment
itself:

* **BlockNote** (`@blocknote/core`'s ProseMirror schema, written by `y-prosemirror`): the fragment
  holds one `blockGroup`; a `blockGroup` holds `blockContainer`s, each with a stable `id`
  attribute, one block-content node (`paragraph`, `heading`, …: its tag is the block type, its
  attributes the props, its children the inline content) and optionally a nested `blockGroup` with
  the child blocks. Multi-column `columnList`/`column` nodes are blocks with children.
* **Generic ProseMirror / Tiptap**: every element of the fragment is a block; an element holding
  text is a leaf with inline content, an element holding only elements (a list, a list item) has
  them as child blocks. Ids come from an `id` attribute when the nodes carry one, else from the
  position (`"2"`, `"2.0"`, …: stable only while nobody inserts above them).

Inline content uses BlockNote's JSON shape (its `Block.content`): `{"type": "text", "text",
"styles"}` runs, `{"type": "link", "href", "content"}` for link marks, `"\\n"` for hard breaks,
and `{"type": <node>, "props": {…}}` for other inline nodes (mentions and other custom inline
content). Styles come from y-prosemirror's marks: `{"bold": {}}` → `bold: true`,
`{"textColor": {"stringValue": "red"}}` → `textColor: "red"`.

Types: blocks, their props, inline content and styles are BlockNote's JSON, so their dicts
here are open JSON on purpose: their shape is the editor's schema (`blocknote_schema.json`, checked
by `services/block_schema.py`), which a Python class would only copy and fall behind.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from pycrdt import XmlElement, XmlFragment, XmlText

from services.block_schema import content_kind
from services.ydoc_roots import attributes_of, mark_name, plain

BLOCK_GROUP = "blockGroup"
BLOCK_CONTAINER = "blockContainer"
HARD_BREAK = "hardBreak"
LINK_MARK = "link"
TABLE_ROW = "tableRow"
# The cell attributes BlockNote shows as a table cell's props (the rest, e.g. colwidth, are layout).
TABLE_CELL_PROPS = ("colspan", "rowspan", "backgroundColor", "textColor", "textAlignment")
# BlockNote string styles carry their value in this attribute of the mark.
STRING_STYLE_ATTR = "stringValue"


class Layout(StrEnum):
    BLOCKNOTE = "blocknote"
    PROSEMIRROR = "prosemirror"
    EMPTY = "empty"


@dataclass
class Block:
    """One block. `element` is the node that carries the block (the `blockContainer` for
    BlockNote), `content_element` the node holding its inline content (None: no content)."""

    id: str
    type: str
    props: dict[str, Any]
    content: list[dict[str, Any]] | dict[str, Any] | None
    children: list[Block] = field(default_factory=list)
    element: XmlElement | None = None
    content_element: XmlElement | None = None

    @property
    def text(self) -> str:
        """Plain text of the block's own content (search, diffs)."""
        return plain_text(self.content)

    def to_json(self) -> dict[str, Any]:
        data: dict[str, Any] = {"id": self.id, "type": self.type, "props": self.props}
        if self.content is not None:
            data["content"] = self.content
        data["text"] = self.text
        data["children"] = [child.to_json() for child in self.children]
        return data


def layout_of(fragment: XmlFragment) -> Layout:
    children = list(fragment.children)
    if not children:
        return Layout.EMPTY
    if any(isinstance(c, XmlElement) and c.tag == BLOCK_GROUP for c in children):
        return Layout.BLOCKNOTE
    return Layout.PROSEMIRROR


def read_blocks(fragment: XmlFragment) -> tuple[Layout, list[Block]]:
    layout = layout_of(fragment)
    if layout is Layout.BLOCKNOTE:
        groups = [
            c for c in fragment.children if isinstance(c, XmlElement) and c.tag == BLOCK_GROUP
        ]
        return layout, [block for group in groups for block in _blocknote_group(group)]
    if layout is Layout.PROSEMIRROR:
        return layout, _generic_children(fragment, prefix="")
    return layout, []


def walk(blocks: list[Block]) -> Iterator[tuple[Block, Block | None, int, list[str]]]:
    """Depth first, document order: (block, parent, position among siblings, path of ids)."""
    stack: list[tuple[Block, Block | None, int, list[str]]] = [
        (block, None, pos, [block.id]) for pos, block in reversed(list(enumerate(blocks)))
    ]
    while stack:
        block, parent, position, path = stack.pop()
        yield block, parent, position, path
        stack.extend(
            (child, block, pos, [*path, child.id])
            for pos, child in reversed(list(enumerate(block.children)))
        )


# --- BlockNote ------------------------------------------------------------------------------


def _elements(parent: XmlElement | XmlFragment) -> list[XmlElement]:
    return [c for c in parent.children if isinstance(c, XmlElement)]


def _blocknote_group(group: XmlElement) -> list[Block]:
    return [_blocknote_block(element) for element in _elements(group)]


def _blocknote_block(element: XmlElement) -> Block:
    attrs = attributes_of(element)
    block_id = str(attrs.pop("id", "") or "")
    if element.tag != BLOCK_CONTAINER:  # columnList / column: a block made of blocks
        children = [_blocknote_block(child) for child in _elements(element)]
        return Block(block_id, element.tag or "", attrs, None, children, element)
    content_node = next((c for c in _elements(element) if c.tag != BLOCK_GROUP), None)
    group = next((c for c in _elements(element) if c.tag == BLOCK_GROUP), None)
    children = _blocknote_group(group) if group is not None else []
    if content_node is None:
        return Block(block_id, "unknown", attrs, None, children, element)
    props = {**attrs, **attributes_of(content_node)}
    kind = content_node.tag or ""
    return Block(
        block_id,
        kind,
        props,
        None if content_kind(kind) == "none" else node_content(content_node),
        children,
        element,
        content_node,
    )


def node_content(node: XmlElement) -> list[dict[str, Any]] | dict[str, Any] | None:
    """A content node's children as BlockNote content: inline runs, or a table's rows."""
    elements = _elements(node)
    if elements and all(e.tag == TABLE_ROW for e in elements):
        return table_content(elements)
    return inline_content(node)


def table_content(rows: list[XmlElement]) -> dict[str, Any]:
    """BlockNote's `tableContent` (nodeToBlock's contentNodeToTableContent): cells with their
    props and inline content, column widths from the first row, header rows/columns counted."""
    cells = [_elements(row) for row in rows]
    widths: list[Any] = []
    for cell in cells[0] if cells else []:
        colwidth = cell.attributes.get("colwidth")
        span = int(plain(cell.attributes.get("colspan") or 1))
        widths.extend(plain(colwidth) if isinstance(colwidth, list) else [None] * span)
    table: dict[str, Any] = {
        "type": "tableContent",
        "columnWidths": widths,
        "rows": [{"cells": [_table_cell(cell) for cell in row]} for row in cells],
    }
    header = [[cell.tag == "tableHeader" for cell in row] for row in cells]
    header_rows = sum(1 for row in header if row and all(row))
    columns = len(header[0]) if header else 0
    header_cols = sum(1 for i in range(columns) if all(i < len(row) and row[i] for row in header))
    if header_rows:
        table["headerRows"] = header_rows
    if header_cols:
        table["headerCols"] = header_cols
    return table


def _table_cell(cell: XmlElement) -> dict[str, Any]:
    """A cell's paragraphs joined like BlockNote joins them (a newline between equal styles)."""
    content: list[dict[str, Any]] = []
    for paragraph in _elements(cell):
        runs = inline_content(paragraph)
        if content and runs and _mergeable(content[-1], runs[0]):
            content[-1] = {**content[-1], "text": content[-1]["text"] + "\n" + runs[0]["text"]}
            runs = runs[1:]
        content.extend(runs)
    attrs = attributes_of(cell)
    props = {key: attrs[key] for key in TABLE_CELL_PROPS if key in attrs}
    return {"type": "tableCell", "content": content, "props": props}


def _mergeable(last: dict[str, Any], first: dict[str, Any]) -> bool:
    return last["type"] == first["type"] == "text" and last["styles"] == first["styles"]


# --- inline content -------------------------------------------------------------------------


def _styles(attrs: dict[str, Any] | None) -> tuple[dict[str, Any], str | None]:
    """(BlockNote styles, link href) of a text run's y-prosemirror mark attributes."""
    styles: dict[str, Any] = {}
    href = None
    for key, value in (attrs or {}).items():
        name = mark_name(key)
        if value is None:
            continue
        if name == LINK_MARK:
            href = str(value.get("href", "")) if isinstance(value, dict) else str(value)
        elif isinstance(value, dict) and STRING_STYLE_ATTR in value:
            styles[name] = plain(value[STRING_STYLE_ATTR])
        elif isinstance(value, dict) and value:
            styles[name] = plain(value)
        else:
            styles[name] = True
    return dict(sorted(styles.items())), href


def _runs(node: XmlElement) -> Iterator[tuple[dict[str, Any], str | None]]:
    """(inline item, link href) in order: text runs, hard breaks as "\\n", inline nodes."""
    for child in node.children:
        if isinstance(child, XmlText):
            for chunk, attrs in child.diff():
                styles, href = _styles(attrs)
                if isinstance(chunk, str):
                    yield {"type": "text", "text": chunk, "styles": styles}, href
                else:
                    yield {"type": "embed", "value": plain(chunk)}, href
        elif isinstance(child, XmlElement) and child.tag == HARD_BREAK:
            yield {"type": "text", "text": "\n", "styles": {}}, None
        elif isinstance(child, XmlElement):
            item: dict[str, Any] = {"type": child.tag, "props": attributes_of(child)}
            inner = inline_content(child)
            if inner:
                item["content"] = inner
            yield item, None


def _join(items: list[dict[str, Any]], item: dict[str, Any]) -> None:
    """Append, merging adjacent text runs with equal styles (item boundaries are invisible)."""
    last = items[-1] if items else None
    if (
        last is not None
        and last["type"] == "text" == item["type"]
        and last["styles"] == item["styles"]
    ):
        last["text"] += item["text"]
    else:
        items.append(item)


def inline_content(node: XmlElement) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = []
    for item, href in _runs(node):
        if href is None:
            _join(items, item)
            continue
        last = items[-1] if items else None
        if last is None or last["type"] != "link" or last["href"] != href:
            last = {"type": "link", "href": href, "content": []}
            items.append(last)
        _join(last["content"], item)
    return items


def plain_text(content: list[dict[str, Any]] | dict[str, Any] | None) -> str:
    if content is None:
        return ""
    if isinstance(content, dict):  # a table: cells by tabs, rows by newlines
        return "\n".join(
            "\t".join(plain_text(cell.get("content")) for cell in row.get("cells", []))
            for row in content.get("rows", [])
        )
    parts = []
    for item in content:
        if item.get("type") == "text":
            parts.append(item.get("text", ""))
        elif isinstance(item.get("content"), list):
            parts.append(plain_text(item["content"]))
    return "".join(parts)


# --- generic ProseMirror / Tiptap -----------------------------------------------------------


def _generic_children(parent: XmlFragment | XmlElement, prefix: str) -> list[Block]:
    return [
        _generic_block(element, f"{prefix}{index}")
        for index, element in enumerate(_elements(parent))
    ]


def _generic_block(element: XmlElement, position_id: str) -> Block:
    attrs = attributes_of(element)
    block_id = str(attrs.pop("id", None) or position_id)
    holds_text = any(isinstance(c, XmlText) for c in element.children)
    if holds_text or not _elements(element):
        return Block(
            block_id, element.tag or "", attrs, inline_content(element), [], element, element
        )
    children = _generic_children(element, prefix=f"{position_id}.")
    return Block(block_id, element.tag or "", attrs, None, children, element)
