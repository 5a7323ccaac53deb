"""`GET /api/v1/documents/{doc_id}/export/`: the document as a Markdown, HTML or PDF file."""

from __future__ import annotations

from urllib.parse import quote

from handlers.base import BaseHandler, signed_in
from handlers.routing import route
from handlers.schemas.export import ExportQuerySchema
from services.auth_guard import Principal
from services.export import FORMATS, Point, export_document


def content_disposition(filename: str) -> str:
    """RFC 6266: an ASCII fallback plus the UTF-8 name for clients that read `filename*`."""
    fallback = filename.encode("ascii", "replace").decode().replace("?", "_").replace('"', "_")
    return f"attachment; filename=\"{fallback}\"; filename*=UTF-8''{quote(filename)}"


class ExportHandler(BaseHandler):
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
        exported = await export_document(self.ctx, principal.user_id, doc_id, args["format"], point)
        self.set_header("Content-Type", exported.content_type)
        self.set_header("Content-Disposition", content_disposition(exported.filename))
        if exported.seq is not None:
            self.set_header("X-Collab-Seq", str(exported.seq))
        self.finish(exported.body)


ROUTES = [route("/api/v1/documents/{doc_id}/export/", ExportHandler)]
