"""A workspace as a zip of Markdown files: every document the caller may view, arranged by the
sub-page tree (`Parent.md` beside a `Parent/` folder holding its sub-pages' files), each page
linking its sub-pages by relative path.

Visibility is the document listing's (the policy compiled to SQL); a page whose parent the
caller may not view is placed at the top of the zip, so the tree never reveals a hidden page,
not even by a folder name. Content is each document as it is now (snapshot + log).
"""

from __future__ import annotations

import asyncio
import io
import posixpath
import zipfile
from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from core.errors import Forbidden, NotFound
from models.repo import workspaces as workspaces_repo
from services import policy
from services.documents import ListFilter, list_documents
from services.export import ExportFile, Point, file_stem, load_for_export, render
from services.export_render import SubPage
from services.policy import Action, Resource

if TYPE_CHECKING:
    from services.deps import Deps

ZIP_CONTENT_TYPE = "application/zip"
# Documents read per listing query while collecting the workspace.
PAGE_SIZE = 1000


@dataclass(frozen=True)
class Page:
    id: str
    parent_id: str | None
    title: str


def page_paths(pages: Iterable[Page]) -> dict[str, str]:
    """Each page's path in the zip (pure). Siblings whose names clash (also by case, for
    case-insensitive file systems) get their id's first characters appended."""
    listed = list(pages)
    known = {page.id for page in listed}
    children: dict[str | None, list[Page]] = {}
    for page in listed:
        parent = page.parent_id if page.parent_id in known else None
        children.setdefault(parent, []).append(page)
    paths: dict[str, str] = {}

    def place(parent: str | None, folder: str) -> None:
        used: set[str] = set()
        for page in children.get(parent, []):
            if page.id in paths:  # a cycle cannot be stored, but never loop on one
                continue
            stem = file_stem(page.title, "Untitled")
            if stem.lower() in used:
                stem = f"{stem}-{page.id[:8]}"
            used.add(stem.lower())
            paths[page.id] = f"{folder}{stem}.md"
            place(page.id, f"{folder}{stem}/")

    place(None, "")
    return paths


def relative_link(from_path: str, to_path: str) -> str:
    return posixpath.relpath(to_path, posixpath.dirname(from_path) or ".")


async def visible_pages(ctx: Deps, actor_id: str, workspace_id: str) -> list[Page]:
    pages: list[Page] = []
    where = ListFilter(workspace_id)
    while True:
        rows = await list_documents(ctx, actor_id, where, PAGE_SIZE, len(pages))
        pages += [
            Page(str(r.id), None if r.parent_id is None else str(r.parent_id), r.title)
            for r in rows
        ]
        if len(rows) < PAGE_SIZE:
            return pages


def _zip(files: list[tuple[str, bytes]]) -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for path, body in files:
            archive.writestr(path, body)
    return out.getvalue()


async def export_workspace(ctx: Deps, actor_id: str, workspace_id: str) -> ExportFile:
    """The zip (a background job's work: one content load per document)."""
    await policy.require(ctx, actor_id, Action.WORKSPACE_VIEW, Resource.workspace(workspace_id))
    workspace = await workspaces_repo.get_workspace(ctx.db, workspace_id)
    if workspace is None:
        raise NotFound("workspace not found")
    pages = await visible_pages(ctx, actor_id, workspace_id)
    paths = page_paths(pages)
    kids: dict[str, list[Page]] = {}
    for page in pages:
        if page.parent_id in paths:
            kids.setdefault(page.parent_id, []).append(page)
    files: list[tuple[str, bytes]] = []
    for page in pages:
        try:
            loaded = await load_for_export(ctx, actor_id, page.id, Point())
        except (NotFound, Forbidden):  # deleted or hidden since the listing: left out
            continue
        children = [
            SubPage(child.title, relative_link(paths[page.id], paths[child.id]))
            for child in kids.get(page.id, [])
        ]
        files.append((paths[page.id], (await render(loaded, "markdown", children)).body))
    body = await asyncio.get_running_loop().run_in_executor(None, _zip, files)
    name = f"{file_stem(str(workspace['name']), 'workspace')}.zip"
    return ExportFile(body, ZIP_CONTENT_TYPE, name, None)
