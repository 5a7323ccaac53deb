"""Export a document — now, at a version or at a stream sequence — as Markdown, HTML or PDF.

The content is read from the CRDT state (not the projection), so any version can be exported
exactly; mentions are shown as the mentioned users' display names. The PDF is WeasyPrint
printing the HTML export (real typography: Pango shaping, fonts, page breaks), run in a worker
thread because it is CPU-bound, with a URL fetcher that fetches nothing: a document's image URLs
must not make the server issue requests (SSRF), so images appear as their captions.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from core.errors import NotFound
from models.repo import doc_content as content_repo
from models.repo import documents as docs_repo
from models.repo import exports as exports_repo
from services import policy
from services.doc_content import to_json
from services.doc_history import state_at_seq, state_of_version
from services.doc_state import load_state
from services.documents import ListFilter, fragment_of, list_documents
from services.export_render import Remark, SubPage, Thread, to_html, to_markdown
from services.mail_messages import absolute_url
from services.policy import Action, Resource

if TYPE_CHECKING:
    from services.deps import Deps

FORMATS: dict[str, tuple[str, str]] = {
    "markdown": ("text/markdown; charset=utf-8", "md"),
    "html": ("text/html; charset=utf-8", "html"),
    "pdf": ("application/pdf", "pdf"),
}


@dataclass(frozen=True)
class Point:
    """Which state to export: the live document, a version, or a stream sequence."""

    version_id: str | None = None
    seq: int | None = None


@dataclass(frozen=True)
class ExportFile:
    body: bytes
    content_type: str
    filename: str
    seq: int | None


def _mentioned(blocks: list[dict[str, Any]]) -> set[str]:
    found: set[str] = set()

    def visit(node: Any) -> None:
        if isinstance(node, dict):
            if node.get("type") == "mention":
                props = node.get("props") or {}
                found.add(str(props.get("user") or props.get("id") or ""))
            for value in node.values():
                visit(value)
        elif isinstance(node, list):
            for item in node:
                visit(item)

    visit(blocks)
    found.discard("")
    return found


def file_stem(title: str, fallback: str = "document") -> str:
    """A title as a file name: word characters, dots and dashes, no leading dot (no hidden
    files, no `..`), at most 80 characters."""
    return re.sub(r"[^\w.-]+", "-", title, flags=re.UNICODE).strip("-.")[:80] or fallback


def filename_for(title: str, extension: str) -> str:
    return f"{file_stem(title)}.{extension}"


# Sub-pages listed under one page's export at most (a page with more is a list, not a page).
MAX_SUBPAGES = 1000


async def subpages(
    ctx: Deps, actor_id: str, doc: dict[str, Any], link: Callable[[str], str]
) -> list[SubPage]:
    """The document's live sub-pages the caller may view (the listing's policy SQL), oldest
    first, linked by `link(sub-page id)`. Sub-pages are today's: the page tree is Postgres
    metadata, not part of the versioned content."""
    where = ListFilter(str(doc["workspace_id"]), parent_id=str(doc["id"]))
    rows = await list_documents(ctx, actor_id, where, MAX_SUBPAGES, 0)
    return [SubPage(row.title or "", link(str(row.id))) for row in rows]


def render_pdf(page: str) -> bytes:
    import weasyprint  # imported on first use: it loads Pango, which costs ~0.3 s

    # No protocol allowed: the server never requests a URL a document names (SSRF).
    no_fetch = weasyprint.urls.URLFetcher(allowed_protocols=(), fail_on_errors=False)
    return bytes(weasyprint.HTML(string=page, url_fetcher=no_fetch).write_pdf())


@dataclass(frozen=True)
class Loaded:
    """A document's content at the exported point, with what rendering needs besides it."""

    doc: dict[str, Any]
    blocks: list[dict[str, Any]]
    names: dict[str, str]
    seq: int | None
    threads: tuple[Thread, ...] = ()  # comments, when asked for as footnotes

    @property
    def title(self) -> str:
        return str(self.doc.get("title") or "")


async def comment_threads(ctx: Deps, doc_id: str) -> tuple[Thread, ...]:
    """The document's comment threads as they are now (comments are not versioned: a
    point-in-time export shows today's), each with its live comments, top one first."""
    heads: dict[str, tuple[str | None, bool]] = {}
    remarks: dict[str, list[Remark]] = {}
    for row in await exports_repo.comments_of(ctx.db, doc_id):
        thread_id = str(row["thread_id"])
        heads.setdefault(thread_id, (row["block_id"], row["status"] == "resolved"))
        remarks.setdefault(thread_id, []).append(
            Remark(str(row["author"]) or "Someone", str(row["text"]))
        )
    return tuple(Thread(*heads[t], tuple(remarks[t])) for t in heads)


async def load_for_export(
    ctx: Deps, actor_id: str, doc_id: str, point: Point, *, comments: bool = False
) -> Loaded:
    """The policy check and the content at `point` (400/404/409 for a bad point, here, before
    any rendering: a background export refuses a bad request at once); with `comments`, the
    comment threads too (whoever may view a document may read its comments)."""
    await policy.require(ctx, actor_id, Action.DOCUMENT_VIEW, Resource.document(doc_id))
    doc = await docs_repo.get_document(ctx.db, doc_id)
    if doc is None:
        raise NotFound("document not found")
    seq: int | None
    if point.version_id is not None:
        state, seq = await state_of_version(ctx, doc_id, point.version_id)
    elif point.seq is not None:
        state, seq = await state_at_seq(ctx, doc_id, point.seq), point.seq
    else:
        current = await load_state(ctx.db, ctx.doc_log, doc_id)
        state, seq = current.update, current.seq
    blocks = to_json(state, fragment_of(ctx, doc))["blocks"]
    names = await content_repo.display_names(ctx.db, sorted(_mentioned(blocks)))
    threads = await comment_threads(ctx, doc_id) if comments else ()
    return Loaded(doc, blocks, names, seq, threads)


def block_count(blocks: list[dict[str, Any]]) -> int:
    """Blocks in a tree, nested ones included: the size that decides a background export."""
    return sum(1 + block_count(block.get("children") or []) for block in blocks)


async def render(loaded: Loaded, fmt: str, children: Sequence[SubPage]) -> ExportFile:
    content_type, extension = FORMATS[fmt]
    if fmt == "markdown":
        body = to_markdown(
            loaded.title, loaded.blocks, loaded.names, children, loaded.threads
        ).encode()
    else:
        page = to_html(loaded.title, loaded.blocks, loaded.names, children, loaded.threads)
        if fmt == "html":
            body = page.encode()
        else:
            body = await asyncio.get_running_loop().run_in_executor(None, render_pdf, page)
    return ExportFile(body, content_type, filename_for(loaded.title, extension), loaded.seq)


async def render_for(ctx: Deps, actor_id: str, loaded: Loaded, fmt: str) -> ExportFile:
    """One document's file, its sub-pages linked to their own export in the same format."""

    def link(page_id: str) -> str:
        return absolute_url(ctx.settings, f"/api/v1/documents/{page_id}/export/?format={fmt}")

    return await render(loaded, fmt, await subpages(ctx, actor_id, loaded.doc, link))


async def export_document(
    ctx: Deps, actor_id: str, doc_id: str, fmt: str, point: Point, *, comments: bool = False
) -> ExportFile:
    loaded = await load_for_export(ctx, actor_id, doc_id, point, comments=comments)
    return await render_for(ctx, actor_id, loaded, fmt)
