"""Document actions: create, list, read (with content), update, soft delete, duplicate.

A document is a header row in Postgres (workspace, board, parent page, title) plus its content, the
CRDT doc in the log (services/doc_state.py). Reads combine both: `version` is the stream sequence
the content covers. Writes to content (duplicate here, restore in services/versions.py) go through
the document log like any editor's update, so live rooms on every node receive them.

Events: `document.created|updated|deleted` activity events are emitted through the change's unit
of work (services/unit_of_work.py): staged in its transaction, published after it commits.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from functools import partial
from typing import TYPE_CHECKING, Any

import structlog

from bus.doc_log import LogEntry
from core.errors import NotFound, ValidationFailed
from core.patch import UNSET, Unset, given, named_in
from core.yjs import EMPTY_UPDATE
from models.repo import doc_content as content_repo
from models.repo import documents as repo
from services import activity, comments, permissions_cache, policy
from services.doc_content import to_json
from services.doc_state import DocState, advance_state, extend_state, load_state
from services.document_entities import Document, DocumentMeta, DocumentSummary, Privacy
from services.policy import Action, Resource
from services.projection import compute_projection, write_projection
from services.projection_compute import Projection
from services.unit_of_work import UnitOfWork, unit_of_work

if TYPE_CHECKING:
    from services.deps import Deps

log = structlog.get_logger(__name__)

MAX_TITLE_CHARS = 500
# Root names are short identifiers in practice (`prosemirror`, `default`, `document-store`).
MAX_FRAGMENT_CHARS = 100
COPY_PREFIX = "Copy of "


@dataclass(frozen=True)
class Placement:
    """Where a new document goes; checked against the caller's rights and the workspace."""

    workspace_id: str
    board_id: str | None
    parent_id: str | None


async def check_placement(ctx: Deps, actor_id: str, placement: Placement) -> None:
    """May the caller create content here? Board and parent must be in the same workspace.

    Order matters for what an outsider learns: the workspace check comes first (404 for a
    workspace they are not in), then each referenced object (404 if they cannot see it).
    """
    await policy.require(
        ctx,
        actor_id,
        Action.WORKSPACE_CREATE_CONTENT,
        Resource.workspace(placement.workspace_id),
    )
    if placement.board_id is not None:
        access = await policy.require(
            ctx, actor_id, Action.BOARD_EDIT, Resource.board(placement.board_id)
        )
        if access.workspace_id != placement.workspace_id:
            raise ValidationFailed(
                "the board is in another workspace",
                fields={"board_id": ["must be in the document's workspace"]},
            )
    if placement.parent_id is not None:
        await _require_parent(ctx, actor_id, placement.parent_id, placement.workspace_id)


async def _require_parent(ctx: Deps, actor_id: str, parent_id: str, workspace_id: str) -> None:
    """A sub-page is added under a page the caller may edit, in the same workspace."""
    access = await policy.require(ctx, actor_id, Action.DOCUMENT_EDIT, Resource.document(parent_id))
    if access.workspace_id != workspace_id:
        raise ValidationFailed(
            "the parent document is in another workspace",
            fields={"parent_id": ["must be in the document's workspace"]},
        )


@dataclass(frozen=True)
class DocumentPatch:
    """A rename, a move (`parent_id` None: to the top level) and/or the fragment holding the
    block tree (None: the setting's default); UNSET: unchanged."""

    title: str | Unset = UNSET
    parent_id: str | Unset | None = UNSET
    fragment: str | Unset | None = UNSET

    @classmethod
    def of(cls, body: Mapping[str, Any]) -> DocumentPatch:
        patch = cls(**named_in(body, ("title", "fragment")))
        if "parent_id" not in body:
            return patch
        parent = body["parent_id"]
        return cls(patch.title, None if parent is None else str(parent), patch.fragment)

    def changes(self) -> dict[str, object]:
        """The columns to write (and the activity event's `changes`)."""
        return given(self, ("title", "parent_id", "fragment"))


def _header_data(doc: DocumentMeta) -> dict[str, object]:
    """Activity event data; absent rather than null (the envelope's data values are non-null)."""
    data = {
        "document_id": doc.id,
        "title": doc.title,
        "board_id": doc.board_id,
        "parent_id": doc.parent_id,
    }
    return {key: value for key, value in data.items() if value is not None}


async def _insert(
    uow: UnitOfWork,
    actor_id: str,
    placement: Placement,
    title: str,
    *,
    fragment: str | None = None,
    **event: Any,
) -> DocumentMeta:
    row = await repo.insert_document(
        uow.conn,
        workspace_id=placement.workspace_id,
        board_id=placement.board_id,
        parent_id=placement.parent_id,
        title=title,
        # null: as its parent page (none: not private), until someone sets its privacy.
        is_private=None,
        created_by=actor_id,
        fragment=fragment,
    )
    doc = DocumentMeta.from_row(row)
    await uow.emit(
        activity.event(
            placement.workspace_id, "document.created", actor_id, {**_header_data(doc), **event}
        )
    )
    return doc


def fragment_of(ctx: Deps, doc: DocumentMeta | Mapping[str, Any]) -> str:
    """The fragment holding the document's block tree: its own, else the setting's default
    (`doc`: the document, or its row)."""
    own = doc.fragment if isinstance(doc, DocumentMeta) else doc.get("fragment")
    return own or ctx.settings.content_fragment


def with_content(ctx: Deps, doc: DocumentMeta, state: DocState | None) -> Document:
    update = state.update if state is not None else EMPTY_UPDATE
    content = to_json(update, fragment_of(ctx, doc))
    return Document(**vars(doc), version=state.seq if state else 0, content=content)


async def create_document(
    ctx: Deps, actor_id: str, placement: Placement, title: str, fragment: str | None = None
) -> Document:
    await check_placement(ctx, actor_id, placement)
    async with unit_of_work(ctx) as uow:
        doc = await _insert(uow, actor_id, placement, title, fragment=fragment)
    return with_content(ctx, doc, None)


async def _get_meta(ctx: Deps, doc_id: str) -> DocumentMeta:
    row = await repo.get_document(ctx.db, doc_id)
    if row is None:
        raise NotFound("document not found")
    return DocumentMeta.from_row(row)


async def get_document(ctx: Deps, actor_id: str, doc_id: str) -> Document:
    """Metadata, the content as JSON and its version (the stream seq it covers)."""
    await policy.require(ctx, actor_id, Action.DOCUMENT_VIEW, Resource.document(doc_id))
    doc = await _get_meta(ctx, doc_id)
    return with_content(ctx, doc, await load_state(ctx.db, ctx.doc_log, doc_id))


# The caller's effective role on each listed document: the policy's own rule table compiled to SQL,
# with the same page-chain and board inheritance as `policy.load_facts`, so the list and
# `policy.can` agree.
_DOCUMENT_ROLE = policy.document_role_sql("$3::text")
LIST_SQL = f"""
SELECT * FROM (
  SELECT {repo.DOCUMENT_COLUMNS}, eff.is_private AS effective_private, {_DOCUMENT_ROLE} AS my_role
  FROM documents d
  {policy.document_chain_join()}
  LEFT JOIN boards b ON b.id = d.board_id
  LEFT JOIN board_members bg ON bg.board_id = d.board_id AND bg.user_id = $2
  WHERE d.workspace_id = $1 AND d.deleted_at IS NULL
    AND ($4::uuid IS NULL OR d.board_id = $4::uuid)
    AND ($5::uuid IS NULL OR d.parent_id = $5::uuid)
    AND (NOT $6::boolean OR d.parent_id IS NULL)
) visible
WHERE {policy.allows_sql("visible.my_role", Action.DOCUMENT_VIEW)}
ORDER BY created_at, id
LIMIT $7 OFFSET $8
"""


@dataclass(frozen=True)
class ListFilter:
    workspace_id: str
    board_id: str | None = None
    parent_id: str | None = None
    top_level: bool = False


async def list_documents(
    ctx: Deps, actor_id: str, where: ListFilter, limit: int, offset: int
) -> list[DocumentSummary]:
    """Documents the caller may view, oldest first, in one query (visibility is in the SQL)."""
    access = await policy.require(
        ctx, actor_id, Action.WORKSPACE_VIEW, Resource.workspace(where.workspace_id)
    )
    assert access.workspace_role is not None
    rows = await ctx.db.fetch(
        LIST_SQL,
        where.workspace_id,
        actor_id,
        access.workspace_role.label,
        where.board_id,
        where.parent_id,
        where.top_level,
        limit,
        offset,
    )
    # Listed privacy is the effective one (a sub-page inherits its parent's unless it sets its own).
    return [DocumentSummary.from_row({**r, "is_private": r["effective_private"]}) for r in rows]


async def update_document(ctx: Deps, actor_id: str, doc_id: str, patch: DocumentPatch) -> Document:
    """Rename, move under another page (or to the top level with `parent_id: null`), or name
    the fragment holding the block tree (`fragment: null`: the setting's default)."""
    changes = patch.changes()
    if not changes:
        raise ValidationFailed("nothing to update")
    access = await policy.require(ctx, actor_id, Action.DOCUMENT_EDIT, Resource.document(doc_id))
    moves = patch.parent_id is not UNSET
    new_parent = None if patch.parent_id is UNSET else patch.parent_id
    if new_parent is not None:
        await _require_parent(ctx, actor_id, new_parent, access.workspace_id)
    async with unit_of_work(ctx) as uow:
        conn = uow.conn
        if moves:
            await repo.lock_page_tree(conn, access.workspace_id)
            if new_parent is not None and await repo.is_ancestor_or_self(conn, doc_id, new_parent):
                raise ValidationFailed(
                    "a page cannot be moved under itself or one of its sub-pages",
                    fields={"parent_id": ["would create a cycle"]},
                )
        row = await repo.update_document(conn, doc_id, changes)
        if row is None:
            raise NotFound("document not found")
        doc = DocumentMeta.from_row(row)
        if patch.fragment is not UNSET:  # another fragment holds the blocks: re-project at once
            await content_repo.reset_projection(conn, doc_id)
        await uow.emit(
            activity.event(
                access.workspace_id,
                "document.updated",
                actor_id,
                {"document_id": doc_id, "changes": changes},
            )
        )
    if moves:  # inherited privacy and grants come from the new parent now
        await invalidate_subtree(ctx, doc_id, access.workspace_id)
    if patch.fragment is not UNSET:
        await refresh_projection_now(ctx, doc_id)
    return with_content(ctx, doc, await load_state(ctx.db, ctx.doc_log, doc_id))


async def invalidate_subtree(ctx: Deps, doc_id: str, workspace_id: str) -> None:
    """After a change that can alter who may see a page and its sub-pages (privacy, move): cached
    decisions go (a workspace generation bump) and open sockets on every page of the subtree
    re-check on every node (revocation signals)."""
    for page_id in await repo.live_subtree(ctx.db, doc_id):
        await permissions_cache.invalidate_resource(ctx, "document", page_id, workspace_id)


async def set_privacy(ctx: Deps, actor_id: str, doc_id: str, is_private: bool | None) -> Privacy:
    """Make a page private (true), not private (false) or as its parent (null). Its sub-pages
    that do not set their own follow. Manage permission."""
    access = await policy.require(ctx, actor_id, Action.DOCUMENT_MANAGE, Resource.document(doc_id))
    async with unit_of_work(ctx) as uow:
        if not await repo.set_privacy(uow.conn, doc_id, is_private):
            raise NotFound("document not found")
        await uow.emit(
            activity.event(
                access.workspace_id,
                "document.updated",
                actor_id,
                {"document_id": doc_id, "changes": {"is_private": is_private}},
            )
        )
    await invalidate_subtree(ctx, doc_id, access.workspace_id)
    effective = await repo.effective_privacy(ctx.db, doc_id)
    return Privacy(doc_id, effective, is_private)


async def delete_document(ctx: Deps, actor_id: str, doc_id: str) -> list[str]:
    """Soft delete (Manage): the page and its sub-pages disappear at once (404); returns their ids.

    Their content stays in the log and Postgres until the document rows are purged.
    """
    access = await policy.require(ctx, actor_id, Action.DOCUMENT_MANAGE, Resource.document(doc_id))
    async with unit_of_work(ctx) as uow:
        await repo.lock_page_tree(uow.conn, access.workspace_id)
        deleted = await repo.soft_delete_subtree(uow.conn, doc_id)
        if not deleted:
            raise NotFound("document not found")
        await comments.archive_for_documents(uow, deleted)
        await uow.emit(
            activity.event(
                access.workspace_id,
                "document.deleted",
                actor_id,
                {"document_id": doc_id, "deleted_ids": deleted},
            )
        )
        for deleted_id in deleted:
            # Cached decisions and open sockets on every node re-check: the document is gone.
            uow.on_commit(
                partial(
                    permissions_cache.invalidate_resource,
                    ctx,
                    "document",
                    deleted_id,
                    access.workspace_id,
                )
            )
    return deleted


def copy_title(title: str) -> str:
    return (COPY_PREFIX + title)[:MAX_TITLE_CHARS]


async def duplicate_document(ctx: Deps, actor_id: str, doc_id: str, title: str | None) -> Document:
    """A new document beside the source (same workspace, board, parent) with a copy of its
    current content: the source's merged state is the copy's first log update."""
    await policy.require(ctx, actor_id, Action.DOCUMENT_VIEW, Resource.document(doc_id))
    source = await _get_meta(ctx, doc_id)
    placement = Placement(
        str(source.workspace_id),
        None if source.board_id is None else str(source.board_id),
        None if source.parent_id is None else str(source.parent_id),
    )
    await check_placement(ctx, actor_id, placement)
    state = await load_state(ctx.db, ctx.doc_log, doc_id)
    new_title = title if title is not None else copy_title(source.title)
    return await create_with_content(
        ctx,
        actor_id,
        placement,
        new_title,
        state.update,
        kind="duplicate",
        fragment=source.fragment,
        source_id=doc_id,
    )


async def create_with_content(
    ctx: Deps,
    actor_id: str,
    placement: Placement,
    title: str,
    state: bytes,
    *,
    kind: str,
    fragment: str | None = None,
    **event: Any,
) -> Document:
    """A new document (placement checked by the caller) whose log starts with `state`, one
    whole-state update tagged `server:<kind>` (a duplicate, an import)."""
    # The `document.created` event goes out at the commit, before the content is written: the
    # content reaches readers through the document log anyway, and a failed write removes the row.
    async with unit_of_work(ctx) as uow:
        doc = await _insert(uow, actor_id, placement, title, fragment=fragment, **event)
    new_id = str(doc.id)
    try:
        written = await _write_content(ctx, actor_id, new_id, state, kind)
    except BaseException:
        # The row was visible for a moment without its content: remove it (nothing references a
        # document this young). A publish that timed out may still have stored the update: it is
        # an orphaned subject then, purged by the snapshot job.
        await ctx.db.execute("DELETE FROM documents WHERE id = $1", new_id)
        raise
    return with_content(ctx, doc, written)


async def _write_content(
    ctx: Deps, actor_id: str, doc_id: str, state: bytes, kind: str
) -> DocState | None:
    if state == EMPTY_UPDATE or not state:
        return None
    ack = await ctx.doc_log.publish(
        doc_id, state, msg_id=f"{kind}:{doc_id}", client=f"server:{kind}", user=actor_id
    )
    await refresh_projection_now(ctx, doc_id)
    return DocState(state, ack.seq, 0, [])


@dataclass(frozen=True)
class Refreshed:
    """What `refresh_projection_now` read: the state, and what it projected (None when the
    projection already covered that state, or the state could not be read)."""

    state: DocState
    projection: Projection | None


async def refresh_projection_now(
    ctx: Deps,
    doc_id: str,
    base: DocState | None = None,
    entries: list[LogEntry] | None = None,
) -> Refreshed:
    """After a REST write (and for the refresher): project the document as it is now (including
    concurrent edits). The projection is computed in the projection worker before a transaction
    opens; the unit of work is open only for the write. `base`: a state of the document read
    earlier (the refresher's last one); only the log after it is read (`advance_state`), or
    nothing when the caller holds every entry after it (`entries`, from a room's tail)."""
    if base is None:
        state = await load_state(ctx.db, ctx.doc_log, doc_id)
    elif entries is not None:
        state = extend_state(doc_id, base, entries)
    else:
        state = await advance_state(ctx.db, ctx.doc_log, doc_id, base)
    if await content_repo.projection_covers(ctx.db, doc_id, state.seq):
        return Refreshed(state, None)  # nothing newer to install (`replace_blocks`' own fence)
    projection = await compute_projection(
        ctx.projection_worker,
        ctx.db,
        doc_id,
        state.seq,
        state.update,
        ctx.settings.content_fragment,
    )
    if projection is not None:
        async with unit_of_work(ctx) as uow:
            await write_projection(uow, doc_id, state.seq, projection)
    return Refreshed(state, projection)
