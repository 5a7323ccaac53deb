"""Exports: `GET /api/v1/documents/{doc_id}/export/` answers with the file at once; `POST
…/exports/` (a document, a workspace) makes a stored export, now or in the background
(services/export_jobs.py), read back at `/api/v1/exports/{export_id}/` and its `file/`."""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

from handlers.base import BaseHandler, signed_in
from handlers.routing import route
from handlers.schemas.export import (
    ExportQuerySchema,
    ExportRequestSchema,
    ExportStatusSchema,
    WorkspaceExportRequestSchema,
)
from models.exports import PENDING
from services import export_jobs
from services.auth_guard import Principal
from services.export import FORMATS, Point, export_document
from services.workspace_export import ZIP_CONTENT_TYPE


def content_disposition(filename: str) -> str:
    """RFC 6266: an ASCII fallback plus the UTF-8 name for clients that read `filename*`."""
    fallback = filename.encode("ascii", "replace").decode().replace("?", "_").replace('"', "_")
    return f"attachment; filename=\"{fallback}\"; filename*=UTF-8''{quote(filename)}"


class DocumentFileHandler(BaseHandler):
    openapi = {
        "get": {
            "summary": "The document as a file (Markdown, HTML or PDF) — now, at a version "
            "(`version`) or at a stream sequence (`seq`)",
            "query": ExportQuerySchema,
            "media": [content_type.split(";")[0] for content_type, _ in FORMATS.values()],
        }
    }

    @signed_in
    async def get(self, principal: Principal, doc_id: str) -> None:
        args = self.load_query(ExportQuerySchema())
        version = str(args["version"]) if "version" in args else None
        point = Point(version_id=version, seq=args.get("seq"))
        exported = await export_document(
            self.ctx, principal.user_id, doc_id, args["format"], point, comments=args["comments"]
        )
        self.set_header("Content-Type", exported.content_type)
        self.set_header("Content-Disposition", content_disposition(exported.filename))
        if exported.seq is not None:
            self.set_header("X-Collab-Seq", str(exported.seq))
        self.finish(exported.body)


class DocumentExportsHandler(BaseHandler):
    openapi = {
        "post": {
            "summary": "Ask for a stored export of the document (Markdown, HTML or PDF, now or at "
            "a version or seq): 201 ready when small (`COLLAB_EXPORT_SYNC_MAX_BLOCKS`), else 202 "
            "pending, made by the `export_document` job",
            "body": ExportRequestSchema,
            "response": ExportStatusSchema,
            "status": (201, 202),
        }
    }

    @signed_in
    async def post(self, principal: Principal, doc_id: str) -> None:
        args = self.load_body(ExportRequestSchema())
        version = str(args["version"]) if "version" in args else None
        point = Point(version_id=version, seq=args.get("seq"))
        row = await export_jobs.request_document_export(
            self.ctx, principal.user_id, doc_id, args["format"], point, comments=args["comments"]
        )
        send_export(self, row)


def send_export(handler: BaseHandler, row: dict[str, Any]) -> None:
    """201 with a ready export, 202 with a queued one; `Location` is its status URL."""
    status = 202 if row["status"] == PENDING else 201
    handler.set_header("Location", export_jobs.export_path(str(row["id"])))
    handler.send(ExportStatusSchema().dump(export_jobs.to_wire(row)), status)


class WorkspaceExportsHandler(BaseHandler):
    openapi = {
        "post": {
            "summary": "Ask for every document I may view in the workspace as a zip of Markdown "
            "files arranged by the sub-page tree (202, made by the `export_document` job)",
            "body": WorkspaceExportRequestSchema,
            "response": ExportStatusSchema,
            "status": 202,
        }
    }

    @signed_in
    async def post(self, principal: Principal, workspace_id: str) -> None:
        self.load_body(WorkspaceExportRequestSchema())
        row = await export_jobs.request_workspace_export(self.ctx, principal.user_id, workspace_id)
        send_export(self, row)


class ExportHandler(BaseHandler):
    openapi = {
        "get": {
            "summary": "One of my exports: its status, and the download URL once ready",
            "response": ExportStatusSchema,
        }
    }

    @signed_in
    async def get(self, principal: Principal, export_id: str) -> None:
        row = await export_jobs.get_export(self.ctx, principal.user_id, export_id)
        self.send(ExportStatusSchema().dump(export_jobs.to_wire(row)))


class ExportFileHandler(BaseHandler):
    openapi = {
        "get": {
            "summary": "Download one of my exports while I may view what it holds (409 "
            "`export_not_ready`/`export_failed`, 410 `export_expired`)",
            "media": [*(t.split(";")[0] for t, _ in FORMATS.values()), ZIP_CONTENT_TYPE],
        }
    }

    @signed_in
    async def get(self, principal: Principal, export_id: str) -> None:
        file = await export_jobs.download(self.ctx, principal.user_id, export_id)
        self.set_header("Content-Type", file.content_type)
        self.set_header("Content-Disposition", content_disposition(file.filename))
        self.finish(file.body)


ROUTES = [
    route("/api/v1/documents/{doc_id}/export/", DocumentFileHandler),
    route("/api/v1/documents/{doc_id}/exports/", DocumentExportsHandler),
    route("/api/v1/workspaces/{workspace_id}/exports/", WorkspaceExportsHandler),
    route("/api/v1/exports/{export_id}/", ExportHandler),
    route("/api/v1/exports/{export_id}/file/", ExportFileHandler),
]
