"""Markdown as BlockNote blocks (pure: text in, block JSON out), for importing a document.

markdown-it-py (CommonMark, plus GFM tables and strikethrough) parses the text; its syntax tree
is mapped onto the block model the editor uses (`services/block_schema.py`), so an imported
document is an ordinary BlockNote document from its first update on:

* headings 1–6, paragraphs, bullet / numbered lists and GFM task items (`- [ ]`, `- [x]`) with
  nesting (a list item's further paragraphs and lists are its children), quotes, fenced and
  indented code (the info string is the language), tables (GFM; the header row is the first row),
  thematic breaks (divider), a paragraph holding only an image (an image block, alt → caption);
* inline: bold, italic, strike, code, links, `<u>…</u>` (what the export writes for underline),
  hard breaks; other inline HTML is kept as text, never interpreted.

It reads what `services/export_render.to_markdown` writes, so export → import → export gives the
same Markdown. What Markdown cannot say is lost on the way in: toggle items become bullet items,
video / audio / file blocks are paragraphs with a link, a mention is its `@name` text, colours and
alignment take their defaults, and a numbered list's start number is 1 (BlockNote 0.55 has no
`start`).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from services.block_ops import new_block_id

if TYPE_CHECKING:
    from markdown_it import MarkdownIt
    from markdown_it.tree import SyntaxTreeNode

Block = dict[str, Any]
# A Markdown body gives at most this many blocks, a table cell counting as one (building and
# checking them is the import's cost: a table of 20,000 rows is one block but 40,000 cells).
# The whole document must also fit in one log entry: `services/doc_import.py` checks its size.
MAX_IMPORT_BLOCKS = 10_000
_TASK_PREFIXES = {"[ ] ": False, "[x] ": True, "[X] ": True}
_STYLE_OF = {"strong": "bold", "em": "italic", "s": "strike"}
_UNDERLINE_OPEN, _UNDERLINE_CLOSE = "<u>", "</u>"


class TooManyBlocks(ValueError):
    pass


@dataclass(frozen=True)
class Imported:
    title: str | None  # the leading `# heading`, when the caller wants it as the title
    blocks: list[Block]


def _parser() -> MarkdownIt:
    # Imported here, as in `parse_markdown`: only an import uses the parser (`collab serve` does
    # not load it until then).
    from markdown_it import MarkdownIt

    # html off: raw HTML is text (never markup in our model); `<u>` is read back by hand.
    return MarkdownIt("commonmark", {"html": False}).enable(["table", "strikethrough"])


# --- inline ------------------------------------------------------------------------------------


def _inline_runs(node: SyntaxTreeNode, styles: dict[str, bool]) -> Iterator[dict[str, Any]]:
    for child in node.children:
        kind = child.type
        if kind == "text":
            yield from _text_with_underline(child.content, styles)
        elif kind in _STYLE_OF:
            yield from _inline_runs(child, {**styles, _STYLE_OF[kind]: True})
        elif kind == "code_inline":
            yield _run(child.content, {**styles, "code": True})
        elif kind == "softbreak":
            yield _run(" ", styles)
        elif kind == "hardbreak":
            yield _run("\n", styles)
        elif kind == "link":
            inner = _merged(list(_inline_runs(child, styles)))
            yield {"type": "link", "href": str(child.attrs.get("href", "")), "content": inner}
        elif kind == "image":  # an image inside text: a link to it, its alt text as the label
            label = _merged(list(_inline_runs(child, styles))) or [_run("image", styles)]
            yield {"type": "link", "href": str(child.attrs.get("src", "")), "content": label}
        else:
            yield _run(child.content, styles)


def _text_with_underline(text: str, styles: dict[str, bool]) -> Iterator[dict[str, Any]]:
    """`<u>` … `</u>` (HTML is off, so they arrive as text) toggle underline within a run."""
    underline = bool(styles.get("underline"))
    rest = text
    while rest:
        tag = _UNDERLINE_CLOSE if underline else _UNDERLINE_OPEN
        head, found, rest = rest.partition(tag)
        if head:
            yield _run(head, {**styles, "underline": True} if underline else styles)
        if found:
            underline = not underline


def _run(text: str, styles: dict[str, bool]) -> dict[str, Any]:
    return {"type": "text", "text": text, "styles": {k: True for k, v in styles.items() if v}}


def _merged(runs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Adjacent text runs with the same styles as one (what BlockNote itself reads back)."""
    out: list[dict[str, Any]] = []
    for run in runs:
        last = out[-1] if out else None
        if (
            last is not None
            and run["type"] == "text"
            and last["type"] == "text"
            and last["styles"] == run["styles"]
        ):
            out[-1] = {**last, "text": last["text"] + run["text"]}
        elif run["type"] != "text" or run["text"]:
            out.append(run)
    return out


def inline(node: SyntaxTreeNode | None) -> list[dict[str, Any]]:
    if node is None:
        return []
    return _merged(list(_inline_runs(node, {})))


def _inline_child(node: SyntaxTreeNode) -> SyntaxTreeNode | None:
    return next((child for child in node.children if child.type == "inline"), None)


# --- blocks ------------------------------------------------------------------------------------


def _block(kind: str, content: Any = None, **props: Any) -> Block:
    block: Block = {"id": new_block_id(), "type": kind}
    if props:
        block["props"] = props
    if content is not None:
        block["content"] = content
    return block


def _paragraph(node: SyntaxTreeNode) -> Block:
    line = _inline_child(node)
    if line is not None and len(line.children) == 1 and line.children[0].type == "image":
        image = line.children[0]
        caption = "".join(run.get("text", "") for run in inline(image))
        return _block("image", url=str(image.attrs.get("src", "")), caption=caption)
    return _block("paragraph", inline(line))


def _list_items(node: SyntaxTreeNode, kind: str) -> list[Block]:
    items = []
    for item in node.children:
        rest = list(item.children)
        opens_with_text = bool(rest) and rest[0].type == "paragraph"
        # An item that opens with a list or a quote has no text of its own.
        line = _inline_child(rest.pop(0)) if opens_with_text else None
        block = _block(kind, inline(line))
        raw = line.content if line is not None else ""
        if kind == "bulletListItem" and raw[:4] in _TASK_PREFIXES:
            block = _block(
                "checkListItem", _strip_task(inline(line)), checked=_TASK_PREFIXES[raw[:4]]
            )
        children = blocks_of(rest)
        if children:
            block["children"] = children
        items.append(block)
    return items


def _strip_task(runs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    first = runs[0]
    return _merged([{**first, "text": first["text"][4:]}, *runs[1:]])


def _table(node: SyntaxTreeNode) -> Block:
    rows = []
    for section in node.children:  # thead, tbody
        for row in section.children:
            rows.append({"cells": [inline(_inline_child(cell)) for cell in row.children]})
    return _block("table", {"type": "tableContent", "rows": rows})


def _quote(node: SyntaxTreeNode) -> Block:
    """A quote's first paragraph is its text; what follows in it becomes its children."""
    rest = list(node.children)
    opens_with_text = bool(rest) and rest[0].type == "paragraph"
    block = _block("quote", inline(_inline_child(rest.pop(0))) if opens_with_text else [])
    children = blocks_of(rest)
    if children:
        block["children"] = children
    return block


def _code(node: SyntaxTreeNode) -> Block:
    language = (node.info or "").strip().split(" ")[0] or "text"
    return _block("codeBlock", node.content.removesuffix("\n"), language=language)


def blocks_of(nodes: list[SyntaxTreeNode]) -> list[Block]:
    blocks: list[Block] = []
    for node in nodes:
        kind = node.type
        if kind == "heading":
            level = int(node.tag[1])
            blocks.append(_block("heading", inline(_inline_child(node)), level=level))
        elif kind == "paragraph":
            blocks.append(_paragraph(node))
        elif kind == "bullet_list":
            blocks += _list_items(node, "bulletListItem")
        elif kind == "ordered_list":
            blocks += _list_items(node, "numberedListItem")
        elif kind == "blockquote":
            blocks.append(_quote(node))
        elif kind in ("fence", "code_block"):
            blocks.append(_code(node))
        elif kind == "hr":
            blocks.append(_block("divider"))
        elif kind == "table":
            blocks.append(_table(node))
    return blocks


def _count(blocks: list[Block]) -> int:
    return sum(1 + _cells(block) + _count(block.get("children") or []) for block in blocks)


def _cells(block: Block) -> int:
    content = block.get("content")
    if isinstance(content, dict) and content.get("type") == "tableContent":
        return sum(len(row["cells"]) for row in content["rows"])
    return 0


def parse_markdown(text: str, *, title_from_heading: bool) -> Imported:
    """The blocks of a Markdown text; with `title_from_heading`, a leading `# heading` is taken
    out as the title (the export writes the title that way)."""
    from markdown_it.tree import SyntaxTreeNode

    tree = SyntaxTreeNode(_parser().parse(text))
    nodes = list(tree.children)
    title = None
    if title_from_heading and nodes and nodes[0].type == "heading" and nodes[0].tag == "h1":
        runs = inline(_inline_child(nodes[0]))
        title = "".join(_plain(run) for run in runs)
        nodes = nodes[1:]
    blocks = blocks_of(nodes)
    if _count(blocks) > MAX_IMPORT_BLOCKS:
        raise TooManyBlocks(f"more than {MAX_IMPORT_BLOCKS} blocks (a table cell counts as one)")
    return Imported(title, blocks)


def _plain(run: dict[str, Any]) -> str:
    if run["type"] == "link":
        return "".join(_plain(inner) for inner in run["content"])
    return str(run.get("text", ""))
