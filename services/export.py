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
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from core.errors import NotFound
from models.repo import doc_content as content_repo
from models.repo import documents as docs_repo
from services import policy
from services.doc_content import to_json
from services.doc_history import state_at_seq, state_of_version
from services.doc_state import load_state
from services.documents import ListFilter, fragment_of, list_documents
from services.export_render import SubPage, to_html, to_markdown
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


def filename_for(title: str, extension: str) -> str:
    stem = re.sub(r"[^\w.-]+", "-", title, flags=re.UNICODE).strip("-.")[:80] or "document"
    return f"{stem}.{extension}"


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
    return [SubPage(str(row["title"] or ""), link(str(row["id"]))) for row in rows]


def render_pdf(page: str) -> bytes:
    import weasyprint  # imported on first use: it loads Pango, which costs ~0.3 s

    # No protocol allowed: the server never requests a URL a document names (SSRF).
    no_fetch = weasyprint.urls.URLFetcher(allowed_protocols=(), fail_on_errors=False)
    return bytes(weasyprint.HTML(string=page, url_fetcher=no_fetch).write_pdf())


async def export_document(
    ctx: Deps, actor_id: str, doc_id: str, fmt: str, point: Point
) -> ExportFile:
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
    title = str(doc.get("title") or "")
    content_type, extension = FORMATS[fmt]

    def link(page_id: str) -> str:  # the sub-page's own export, in the same format
        return absolute_url(ctx.settings, f"/api/v1/documents/{page_id}/export/?format={fmt}")

    children = await subpages(ctx, actor_id, doc, link)
    if fmt == "markdown":
        body = to_markdown(title, blocks, names, children).encode()
    else:
        page = to_html(title, blocks, names, children)
        if fmt == "html":
            body = page.encode()
        else:
            body = await asyncio.get_running_loop().run_in_executor(None, render_pdf, page)
    return ExportFile(body, content_type, filename_for(title, extension), seq)
