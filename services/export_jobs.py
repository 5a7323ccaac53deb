"""Exports as stored files: asked for with `POST …/exports/`, made now (a small document) or by
the `export_document` background job (a large one, a workspace), kept for `export_ttl_s`, and
downloaded only by the user who asked, while they may still view what was exported.

* **Small or large**: a document of at most `export_sync_max_blocks` blocks is rendered in the
  request (201, ready); a larger one, and every workspace zip, is queued (202, pending). Both are
  checked in the request (policy, version, seq), so a bad request is refused at once, and a
  document export pins the stream seq it was asked at: the file is the document as it was then,
  however long the queue.
* **The job** (`export_document`, every `export_interval_s`, one node at a time under the
  scheduler's lock, a history row per run) drops the files whose time is up, then makes up to
  `MAX_PER_RUN` pending exports, oldest first, as their requester (the policy is checked again:
  someone who lost access gets a failed export, not the file). A refusal (4xx) fails the export
  for good; anything else (a service down) is retried on the next runs, `MAX_ATTEMPTS` in all.
  A finished export notifies its requester (`export.ready`) in the transaction that stores it.
* **Files live in Postgres** (`exports.body`), so whichever node made one, any node serves it.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any
from uuid import UUID

import structlog

from core.errors import AppError, Conflict, Gone, NotFound, RateLimited
from models.exports import EXPIRED, FAILED, PENDING
from models.repo import export_files as repo
from models.repo.export_files import NewExport, StoredFile
from services import notifications, policy
from services.export import (
    ExportFile,
    Point,
    block_count,
    load_for_export,
    render_for,
)
from services.notifications import NotificationDraft
from services.policy import Action, Resource
from services.unit_of_work import unit_of_work
from services.workspace_export import export_workspace

if TYPE_CHECKING:
    from services.deps import Deps

log = structlog.get_logger(__name__)

EXPORT_JOB = "export_document"
# A workspace export's format: a zip of Markdown files.
WORKSPACE_FORMAT = "zip"
# Exports one job run makes at most: a run holds the job's lock, so a long queue drains over
# several runs instead of one run that never ends.
MAX_PER_RUN = 10
# Runs that may break on a passing trouble (a service down) before the export is failed.
MAX_ATTEMPTS = 3
# Queued exports one user may have at once: the queue is shared, one user must not fill it.
MAX_PENDING_PER_USER = 5
# An expired or failed export's row (its 410 / its error) is kept this long, then deleted.
FORGET_AFTER_S = 30 * 86400.0


def export_path(export_id: str) -> str:
    return f"/api/v1/exports/{export_id}/"


def to_wire(row: dict[str, Any]) -> dict[str, Any]:
    """An export's public form: its status and, once ready, where to download it."""
    export_id = str(row["id"])
    wire = {
        key: row[key]
        for key in (
            "status",
            "format",
            "seq",
            "comments",
            "filename",
            "size_bytes",
            "error",
            "created_at",
            "finished_at",
            "expires_at",
        )
    }
    for key in ("workspace_id", "document_id", "version_id"):
        wire[key] = None if row[key] is None else str(row[key])
    wire["id"] = export_id
    wire["status_url"] = export_path(export_id)
    wire["download_url"] = f"{export_path(export_id)}file/" if row["status"] == "ready" else None
    return wire


# --- asking for an export ------------------------------------------------------------------------


async def request_document_export(
    ctx: Deps, actor_id: str, doc_id: str, fmt: str, point: Point, *, comments: bool = False
) -> dict[str, Any]:
    """The export record: ready (made now) or pending (queued for the job); see the module."""
    loaded = await load_for_export(ctx, actor_id, doc_id, point, comments=comments)
    new = NewExport(
        requested_by=actor_id,
        workspace_id=str(loaded.doc["workspace_id"]),
        document_id=doc_id,
        format=fmt,
        version_id=point.version_id,
        seq=loaded.seq,
        comments=comments,
    )
    if block_count(loaded.blocks) > ctx.settings.export_sync_max_blocks:
        return await _queue(ctx, new)
    file = await render_for(ctx, actor_id, loaded, fmt)
    async with ctx.db.transaction() as conn:
        row = await repo.insert(conn, new)
        ready = await repo.mark_ready(conn, str(row["id"]), _stored(file), _expiry(ctx))
    assert ready is not None  # inserted pending in this very transaction
    return ready


async def request_workspace_export(ctx: Deps, actor_id: str, workspace_id: str) -> dict[str, Any]:
    """Every document the caller may view, as a zip of Markdown files: always queued."""
    await policy.require(ctx, actor_id, Action.WORKSPACE_VIEW, Resource.workspace(workspace_id))
    new = NewExport(actor_id, workspace_id, None, WORKSPACE_FORMAT, None, None)
    return await _queue(ctx, new)


async def _queue(ctx: Deps, new: NewExport) -> dict[str, Any]:
    """A pending export, unless the user already has `MAX_PENDING_PER_USER` waiting (429).
    Two requests at the same instant may both pass the count: the cap bounds the queue, it is
    not a quota that must be exact."""
    if await repo.pending_count(ctx.db, new.requested_by) >= MAX_PENDING_PER_USER:
        raise RateLimited(
            f"{MAX_PENDING_PER_USER} exports of yours are still being made: wait for one",
            retry_after_s=int(ctx.settings.export_interval_s),
        )
    return await repo.insert(ctx.db, new)


# --- reading one ---------------------------------------------------------------------------------


async def get_export(ctx: Deps, actor_id: str, export_id: str) -> dict[str, Any]:
    """The caller's own export; anybody else's is 404 (not even its existence is told)."""
    row = await repo.get(ctx.db, export_id)
    if row is None or str(row["requested_by"]) != actor_id:
        raise NotFound("export not found")
    return row


async def download(ctx: Deps, actor_id: str, export_id: str) -> StoredFile:
    """The file, for its requester while they may still view what was exported."""
    row = await get_export(ctx, actor_id, export_id)
    if row["document_id"] is not None:
        resource = Resource.document(str(row["document_id"]))
        await policy.require(ctx, actor_id, Action.DOCUMENT_VIEW, resource)
    else:
        resource = Resource.workspace(str(row["workspace_id"]))
        await policy.require(ctx, actor_id, Action.WORKSPACE_VIEW, resource)
    if row["status"] == PENDING:
        raise Conflict("the export is not ready yet", code="export_not_ready")
    if row["status"] == FAILED:
        raise Conflict(f"the export failed: {row['error']}", code="export_failed")
    expired = row["status"] == EXPIRED or row["expires_at"] <= datetime.now(UTC)
    file = None if expired else await repo.file_of(ctx.db, export_id)
    if file is None:
        raise Gone("the export has expired: ask for a new one", code="export_expired")
    return file


# --- the job -------------------------------------------------------------------------------------


def _expiry(ctx: Deps) -> datetime:
    return datetime.now(UTC) + timedelta(seconds=ctx.settings.export_ttl_s)


def _stored(file: ExportFile) -> StoredFile:
    return StoredFile(file.body, file.filename, file.content_type)


async def _make(ctx: Deps, row: dict[str, Any]) -> ExportFile:
    actor_id = str(row["requested_by"])
    if row["document_id"] is None:
        return await export_workspace(ctx, actor_id, str(row["workspace_id"]))
    version = None if row["version_id"] is None else str(row["version_id"])
    point = Point(version_id=version, seq=None if version else row["seq"])
    loaded = await load_for_export(
        ctx, actor_id, str(row["document_id"]), point, comments=bool(row["comments"])
    )
    return await render_for(ctx, actor_id, loaded, str(row["format"]))


async def _notify_ready(ctx: Deps, row: dict[str, Any], file: ExportFile) -> None:
    """Store the file and tell its requester, in one transaction: no notification for a file
    that was not stored, no stored file without its notification."""
    async with unit_of_work(ctx) as uow:
        ready = await repo.mark_ready(uow.conn, str(row["id"]), _stored(file), _expiry(ctx))
        if ready is None:  # an overlapping run (after a lost lock) finished it first
            return
        draft = NotificationDraft(
            recipient_id=UUID(str(row["requested_by"])),
            kind=notifications.EXPORT_READY,
            actor_id=None,  # the system: the requester is told about their own request
            workspace_id=UUID(str(row["workspace_id"])),
            document_id=None if row["document_id"] is None else UUID(str(row["document_id"])),
            data={
                "export_id": str(row["id"]),
                "format": row["format"],
                "filename": file.filename,
                "download_path": f"{export_path(str(row['id']))}file/",
            },
        )
        await notifications.notify(uow, draft)


async def make_export(ctx: Deps, row: dict[str, Any]) -> str:
    """Make one pending export; what became of it: `ready`, `failed` or `retried`."""
    export_id = str(row["id"])
    try:
        file = await _make(ctx, row)
    except AppError as err:
        if err.status >= 500:
            return await _retry_later(ctx, export_id, f"{err.code}: {err.message}")
        await repo.mark_failed(ctx.db, export_id, f"{err.code}: {err.message}")
        return "failed"
    except Exception as err:
        log.warning("export.attempt_failed", export_id=export_id, error=repr(err))
        return await _retry_later(ctx, export_id, repr(err))
    await _notify_ready(ctx, row, file)
    return "ready"


async def _retry_later(ctx: Deps, export_id: str, error: str) -> str:
    if await repo.count_attempt(ctx.db, export_id, error) >= MAX_ATTEMPTS:
        await repo.mark_failed(ctx.db, export_id, error)
        return "failed"
    return "retried"


async def run_exports(ctx: Deps) -> dict[str, int]:
    """The `export_document` job; returns the counts its history row records."""
    counts = {"expired": await repo.expire_due(ctx.db), "ready": 0, "failed": 0, "retried": 0}
    counts["forgotten"] = await repo.forget_old(ctx.db, FORGET_AFTER_S)
    for _ in range(MAX_PER_RUN):
        row = await repo.next_pending(ctx.db, MAX_ATTEMPTS)
        if row is None:
            break
        counts[await make_export(ctx, row)] += 1
    return counts
