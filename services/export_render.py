"""A document's block tree (BlockNote JSON, `services/doc_content.to_json`) as Markdown or HTML.

Pure functions, no I/O: the export service loads the content at the wanted version and the
display names of mentioned users, these render it. Every BlockNote default block type is handled
(headings, paragraphs, bullet/numbered/to-do/toggle list items with nesting, quotes, code with
its language, tables, images, video/audio/file links, dividers); inline content keeps bold,
italic, strike, code, underline, links and mentions (shown as names). A block type this module
does not know (a custom block, a Tiptap node) still shows its text and its children, so nothing
a document holds is dropped from an export. Besides the blocks: the sub-pages (links by title,
after the content) and, when asked for, the comment threads as footnotes referenced from the
blocks they are anchored to. The Markdown is what `services/markdown_import.py` reads back.
"""

from __future__ import annotations

import html
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

Block = dict[str, Any]
Names = Mapping[str, str]


@dataclass(frozen=True)
class SubPage:
    """A child document linked from its parent's export: its title and where it is (the API
    export URL of a single export, the relative file path inside a workspace zip)."""

    title: str
    href: str


SUBPAGES_HEADING = "Sub-pages"
COMMENTS_HEADING = "Comments"
# An inline run this module adds for a comment footnote's reference (never in stored content).
FOOTNOTE_REF = "collabFootnoteRef"


@dataclass(frozen=True)
class Remark:
    """One comment of a thread, as a footnote shows it."""

    author: str
    text: str


@dataclass(frozen=True)
class Thread:
    """A comment thread on the document: the block it is anchored to (None: the document), and
    its live comments, the top one first."""

    block_id: str | None
    resolved: bool
    remarks: tuple[Remark, ...]


def number_threads(
    blocks: list[Block], threads: Sequence[Thread]
) -> tuple[dict[str, list[int]], list[Thread]]:
    """Footnote numbers in reading order: the threads of each block as the blocks come, then
    the threads whose block is not in this content (unanchored, or a block deleted since, or not
    yet written at an older point). Returns block id → numbers, and the threads in number order."""
    by_block: dict[str, list[Thread]] = {}
    for thread in threads:
        by_block.setdefault(str(thread.block_id), []).append(thread)
    refs: dict[str, list[int]] = {}
    ordered: list[Thread] = []

    def visit(level: list[Block]) -> None:
        for block in level:
            block_id = str(block.get("id"))
            for thread in by_block.pop(block_id, []):
                ordered.append(thread)
                refs.setdefault(block_id, []).append(len(ordered))
            visit(block.get("children") or [])

    visit(blocks)
    ordered += [thread for rest in by_block.values() for thread in rest]
    return refs, ordered


def with_footnote_refs(blocks: list[Block], refs: Mapping[str, list[int]]) -> list[Block]:
    """A copy of the tree with footnote references: at the end of a block's text, or (a block
    without inline text: code, table, image, divider…) in a paragraph right after it."""
    out: list[Block] = []
    for block in blocks:
        copy = dict(block)
        if block.get("children"):
            copy["children"] = with_footnote_refs(block["children"], refs)
        marks = [{"type": FOOTNOTE_REF, "n": n} for n in refs.get(str(block.get("id")), [])]
        inline_text = isinstance(block.get("content"), (list, str))
        if marks and inline_text and block.get("type") not in ("codeBlock", "table"):
            copy["content"] = [*_runs(block.get("content")), *marks]
            marks = []
        out.append(copy)
        if marks:
            out.append({"id": "", "type": "paragraph", "content": marks})
    return out


LIST_TYPES = {"bulletListItem", "numberedListItem", "checkListItem", "toggleListItem"}
_MD_SPECIAL = re.compile(r"([\\`*_\[\]{}<>#|~!])")


_MD_MARKS = {
    "bold": ("**", "**"),
    "italic": ("*", "*"),
    "strike": ("~~", "~~"),
    "underline": ("<u>", "</u>"),
}


def md_escape(text: str) -> str:
    """Markdown's punctuation escaped, so text never turns into markup."""
    return _MD_SPECIAL.sub(r"\\\1", text)


# --- inline content -----------------------------------------------------------------------------


def _runs(content: Any) -> list[dict[str, Any]]:
    """Inline content as a list of runs (BlockNote allows a bare string)."""
    if content is None:
        return []
    if isinstance(content, str):
        return [{"type": "text", "text": content, "styles": {}}]
    if isinstance(content, list):
        return [r for r in content if isinstance(r, dict)]
    return []


def mention_name(run: dict[str, Any], names: Names) -> str:
    props = run.get("props") or {}
    who = str(props.get("user") or props.get("id") or props.get("label") or "")
    return names.get(who, who)


def _md_text(run: dict[str, Any]) -> str:
    text = md_escape(str(run.get("text", "")))
    styles = run.get("styles") or {}
    if styles.get("code"):
        text = "`" + str(run.get("text", "")).replace("`", "'") + "`"
    core = text.strip()
    if not core:
        return text
    for style, (start, end) in _MD_MARKS.items():
        if styles.get(style):
            core = f"{start}{core}{end}"
    # Emphasis markers must touch the text: spaces stay outside (`** about **` is not bold).
    lead = text[: len(text) - len(text.lstrip())]
    trail = text[len(text.rstrip()) :]
    return f"{lead}{core}{trail}"


def inline_markdown(content: Any, names: Names) -> str:
    out = []
    for run in _runs(content):
        kind = run.get("type")
        if kind == "text":
            out.append(_md_text(run))
        elif kind == "link":
            label = inline_markdown(run.get("content"), names)
            out.append(f"[{label}]({_md_url(str(run.get('href', '')))})")
        elif kind == "mention":
            out.append("@" + md_escape(mention_name(run, names)))
        elif kind == FOOTNOTE_REF:
            out.append(f"[^{int(run['n'])}]")
        else:
            out.append(md_escape(str(run.get("text", ""))))
    # A hard line break inside a block: two trailing spaces keep it a break, not a new paragraph.
    return "".join(out).replace("\n", "  \n")


def _md_url(url: str) -> str:
    return url.replace(" ", "%20").replace("(", "%28").replace(")", "%29")


def _html_text(run: dict[str, Any]) -> str:
    text = html.escape(str(run.get("text", ""))).replace("\n", "<br>")
    styles = run.get("styles") or {}
    for style, tag in (
        ("code", "code"),
        ("bold", "strong"),
        ("italic", "em"),
        ("strike", "s"),
        ("underline", "u"),
    ):
        if styles.get(style):
            text = f"<{tag}>{text}</{tag}>"
    return text


def inline_html(content: Any, names: Names) -> str:
    out = []
    for run in _runs(content):
        kind = run.get("type")
        if kind == "text":
            out.append(_html_text(run))
        elif kind == "link":
            href = html.escape(safe_href(str(run.get("href", ""))))
            out.append(f'<a href="{href}">{inline_html(run.get("content"), names)}</a>')
        elif kind == "mention":
            name = html.escape(mention_name(run, names))
            out.append(f'<span class="mention">@{name}</span>')
        elif kind == FOOTNOTE_REF:
            n = int(run["n"])
            out.append(f'<sup class="footnote-ref"><a href="#fn-{n}" id="fnref-{n}">{n}</a></sup>')
        else:
            out.append(html.escape(str(run.get("text", ""))))
    return "".join(out)


def safe_href(url: str) -> str:
    """Only web and mail links survive into HTML/PDF (no `javascript:`)."""
    lowered = url.strip().lower()
    if lowered.startswith(("http://", "https://", "mailto:", "/", "#")):
        return url.strip()
    return "#"


def _cells(row: dict[str, Any]) -> list[Any]:
    cells = []
    for cell in row.get("cells") or []:
        if isinstance(cell, dict) and cell.get("type") == "tableCell":
            cells.append(cell.get("content"))
        else:
            cells.append(cell)
    return cells


def _rows(block: Block) -> list[list[Any]]:
    content = block.get("content") or {}
    rows = content.get("rows") if isinstance(content, dict) else None
    return [_cells(row) for row in rows or [] if isinstance(row, dict)]


def plain_text(block: Block) -> str:
    content = block.get("content")
    if isinstance(content, str):
        return content
    return str(block.get("text") or "")


# --- Markdown -----------------------------------------------------------------------------------


def _md_block(block: Block, names: Names, ordinal: int) -> list[str]:
    kind = block.get("type")
    props = block.get("props") or {}
    content = block.get("content")
    if kind == "heading":
        level = min(max(int(props.get("level") or 1), 1), 6)
        return ["#" * level + " " + inline_markdown(content, names)]
    if kind == "bulletListItem" or kind == "toggleListItem":
        return ["- " + inline_markdown(content, names)]
    if kind == "numberedListItem":
        return [f"{ordinal}. " + inline_markdown(content, names)]
    if kind == "checkListItem":
        box = "[x]" if props.get("checked") else "[ ]"
        return [f"- {box} " + inline_markdown(content, names)]
    if kind == "quote":
        return ["> " + inline_markdown(content, names).replace("\n", "\n> ")]
    if kind == "codeBlock":
        code = plain_text(block)
        fence = "```"
        while fence in code:
            fence += "`"
        return [f"{fence}{props.get('language') or ''}", *code.split("\n"), fence]
    if kind == "table":
        rows = _rows(block)
        if not rows:
            return []
        width = max(len(r) for r in rows)
        lines = []
        for index, row in enumerate(rows):
            cells = [inline_markdown(c, names).replace("\n", " ") for c in row]
            cells += [""] * (width - len(cells))
            lines.append("| " + " | ".join(cells) + " |")
            if index == 0:
                lines.append("|" + "---|" * width)
        return lines
    if kind == "image":
        alt = md_escape(str(props.get("caption") or props.get("name") or ""))
        return [f"![{alt}]({_md_url(str(props.get('url', '')))})"]
    if kind in ("video", "audio", "file"):
        label = str(props.get("caption") or props.get("name") or props.get("url") or kind)
        return [f"[{md_escape(label)}]({_md_url(str(props.get('url', '')))})"]
    if kind == "divider":
        return ["---"]
    text = inline_markdown(content, names) if isinstance(content, (list, str)) else ""
    return [text] if text else []


_BULLETED = {"bulletListItem", "checkListItem", "toggleListItem"}


def _md_blocks(blocks: list[Block], names: Names, indent: str) -> list[str]:
    """Blocks separated by a blank line, except consecutive items of one list; children indented
    under their block (nested lists; other children after a blank line, so Markdown reads them
    as the item's own paragraphs, not as its text continued). Two different bulleted lists in a
    row alternate `-` and `*`: with one marker, Markdown would read them as one list."""
    lines: list[str] = []
    previous: str | None = None
    ordinal = 0
    marker = "*"
    for block in blocks:
        kind = str(block.get("type"))
        ordinal = ordinal + 1 if kind == "numberedListItem" and previous == kind else 1
        if kind == "numberedListItem" and ordinal == 1:
            ordinal = int((block.get("props") or {}).get("start") or 1)
        if kind in _BULLETED and previous != kind:
            marker = "*" if previous in _BULLETED and marker == "-" else "-"
        if lines and not (kind in LIST_TYPES and previous == kind):
            lines.append("")
        own = _md_block(block, names, ordinal)
        if kind in _BULLETED:
            own = [marker + own[0][1:], *own[1:]]
        lines += [indent + line if line else "" for part in own for line in part.split("\n")]
        children = block.get("children") or []
        if children:
            pad = " " * (len(str(ordinal)) + 2) if kind == "numberedListItem" else "  "
            if kind not in LIST_TYPES or str(children[0].get("type")) not in LIST_TYPES:
                lines.append("")
            lines += _md_blocks(children, names, indent + pad)
        previous = kind
    return lines


def _md_subpages(subpages: Sequence[SubPage]) -> list[str]:
    """Sub-pages are documents of their own (no block in the parent holds them), so they are
    listed after the content, as links by title."""
    if not subpages:
        return []
    links = [f"- [{md_escape(page.title)}]({_md_url(page.href)})" for page in subpages]
    return ["", f"## {SUBPAGES_HEADING}", "", *links]


def _md_text_lines(text: str) -> str:
    return md_escape(text).replace("\n", "  \n    ")


def _md_footnotes(threads: Sequence[Thread]) -> list[str]:
    """GFM footnote definitions: the thread's comments, one per line, author in bold."""
    lines: list[str] = []
    for number, thread in enumerate(threads, 1):
        remarks = [f"**{md_escape(r.author)}**: {_md_text_lines(r.text)}" for r in thread.remarks]
        if thread.resolved:
            remarks[-1] += " *(resolved)*"
        # One comment a line: a hard break, then the footnote's 4-space continuation indent.
        lines += ["", f"[^{number}]: " + "  \n    ".join(remarks)]
    return lines


def to_markdown(
    title: str,
    blocks: list[Block],
    names: Names,
    subpages: Sequence[SubPage] = (),
    threads: Sequence[Thread] = (),
) -> str:
    """The document as Markdown; `threads` (its comments) become footnotes referenced from the
    blocks they are anchored to."""
    head = [f"# {md_escape(title)}", ""] if title else []
    if threads:
        refs, threads = number_threads(blocks, threads)
        blocks = with_footnote_refs(blocks, refs)
    body = _md_blocks(blocks, names, "") + _md_subpages(subpages) + _md_footnotes(threads)
    return "\n".join(head + body).strip("\n") + "\n"


# --- HTML ---------------------------------------------------------------------------------------

_LIST_TAG = {"bulletListItem": "ul", "numberedListItem": "ol", "checkListItem": "ul"}

STYLESHEET = """
body { font-family: "DejaVu Serif", Georgia, serif; line-height: 1.5; max-width: 46em;
       margin: 2em auto; padding: 0 1em; color: #1d1d1f; }
h1, h2, h3, h4, h5, h6 { font-family: "DejaVu Sans", Helvetica, sans-serif; line-height: 1.2; }
pre { background: #f5f5f7; padding: .8em; overflow-x: auto; white-space: pre-wrap; }
code { font-family: "DejaVu Sans Mono", monospace; font-size: .9em; }
blockquote { border-left: 3px solid #ccc; margin-left: 0; padding-left: 1em; color: #555; }
table { border-collapse: collapse; } td, th { border: 1px solid #ccc; padding: .3em .6em; }
ul.todo { list-style: none; padding-left: 1.2em; } img { max-width: 100%; }
.mention { color: #0b57d0; }
"""


def _html_block(block: Block, names: Names) -> str:
    kind = block.get("type")
    props = block.get("props") or {}
    content = block.get("content")
    children = _html_blocks(block.get("children") or [], names)
    if kind == "heading":
        level = min(max(int(props.get("level") or 1), 1), 6)
        return f"<h{level}>{inline_html(content, names)}</h{level}>{children}"
    if kind in ("bulletListItem", "numberedListItem"):
        return f"<li>{inline_html(content, names)}{children}</li>"
    if kind == "checkListItem":
        checked = " checked" if props.get("checked") else ""
        box = f'<input type="checkbox" disabled{checked}> '
        return f"<li>{box}{inline_html(content, names)}{children}</li>"
    if kind == "toggleListItem":
        summary = f"<summary>{inline_html(content, names)}</summary>"
        return f"<details open>{summary}{children}</details>"
    if kind == "quote":
        return f"<blockquote>{inline_html(content, names)}</blockquote>{children}"
    if kind == "codeBlock":
        language = str(props.get("language") or "")
        attr = f' class="language-{html.escape(language)}"' if language else ""
        return f"<pre><code{attr}>{html.escape(plain_text(block))}</code></pre>{children}"
    if kind == "table":
        rows = "".join(
            "<tr>" + "".join(f"<td>{inline_html(c, names)}</td>" for c in row) + "</tr>"
            for row in _rows(block)
        )
        return f"<table><tbody>{rows}</tbody></table>{children}"
    if kind == "image":
        src = html.escape(safe_href(str(props.get("url", ""))))
        caption = html.escape(str(props.get("caption") or props.get("name") or ""))
        figcaption = f"<figcaption>{caption}</figcaption>" if caption else ""
        return f'<figure><img src="{src}" alt="{caption}">{figcaption}</figure>{children}'
    if kind in ("video", "audio", "file"):
        href = html.escape(safe_href(str(props.get("url", ""))))
        label = html.escape(
            str(props.get("caption") or props.get("name") or props.get("url") or kind)
        )
        return f'<p class="{kind}"><a href="{href}">{label}</a></p>{children}'
    if kind == "divider":
        return f"<hr>{children}"
    text = inline_html(content, names) if isinstance(content, (list, str)) else ""
    return (f"<p>{text}</p>" if text or kind == "paragraph" else "") + children


def _html_blocks(blocks: list[Block], names: Names) -> str:
    """Consecutive list items of one kind share a `<ul>`/`<ol>`."""
    out: list[str] = []
    open_tag: str | None = None
    open_kind: str | None = None
    for block in blocks:
        kind = str(block.get("type"))
        tag = _LIST_TAG.get(kind)
        if open_kind != kind and open_tag:
            out.append(f"</{open_tag}>")
            open_tag = open_kind = None
        if tag and open_tag is None:
            start = (block.get("props") or {}).get("start")
            attrs = ' class="todo"' if kind == "checkListItem" else ""
            if kind == "numberedListItem" and start and int(start) != 1:
                attrs = f' start="{int(start)}"'
            out.append(f"<{tag}{attrs}>")
            open_tag, open_kind = tag, kind
        out.append(_html_block(block, names))
    if open_tag:
        out.append(f"</{open_tag}>")
    return "".join(out)


def _html_subpages(subpages: Sequence[SubPage]) -> str:
    if not subpages:
        return ""
    items = "".join(
        f'<li><a href="{html.escape(safe_href(page.href))}">{html.escape(page.title)}</a></li>'
        for page in subpages
    )
    return f'<nav class="subpages"><h2>{SUBPAGES_HEADING}</h2><ul>{items}</ul></nav>'


def _html_footnotes(threads: Sequence[Thread]) -> str:
    if not threads:
        return ""
    items = []
    for number, thread in enumerate(threads, 1):
        remarks = "".join(
            f"<p><strong>{html.escape(r.author)}</strong>: "
            f"{html.escape(r.text).replace(chr(10), '<br>')}</p>"
            for r in thread.remarks
        )
        state = " <em>(resolved)</em>" if thread.resolved else ""
        back = f' <a href="#fnref-{number}" class="footnote-back">↩</a>'
        items.append(f'<li id="fn-{number}">{remarks}{state}{back}</li>')
    return (
        f'<section class="footnotes"><h2>{COMMENTS_HEADING}</h2><ol>{"".join(items)}</ol></section>'
    )


def to_html(
    title: str,
    blocks: list[Block],
    names: Names,
    subpages: Sequence[SubPage] = (),
    threads: Sequence[Thread] = (),
) -> str:
    """A standalone HTML5 page (UTF-8, embedded stylesheet): what the PDF is printed from;
    `threads` as footnotes, like `to_markdown`."""
    safe_title = html.escape(title)
    heading = f'<h1 class="title">{safe_title}</h1>' if title else ""
    if threads:
        refs, threads = number_threads(blocks, threads)
        blocks = with_footnote_refs(blocks, refs)
    body = _html_blocks(blocks, names) + _html_subpages(subpages) + _html_footnotes(threads)
    return (
        '<!DOCTYPE html>\n<html><head><meta charset="utf-8">'
        f"<title>{safe_title}</title><style>{STYLESHEET}</style></head>"
        f"<body>{heading}{body}</body></html>\n"
    )


Renderer = Callable[[str, list[Block], Names, Sequence[SubPage], Sequence[Thread]], str]
