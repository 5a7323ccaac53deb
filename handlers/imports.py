"""`POST /api/v1/workspaces/{workspace_id}/import/`: a Markdown body as a new document."""

from __future__ import annotations

from handlers.base import BaseHandler, signed_in
from handlers.routing import route
from handlers.schemas.documents import DocumentSchema
from handlers.schemas.export import ImportQuerySchema
from services.auth_guard import Principal
from services.doc_import import import_markdown
from services.documents import Placement

MARKDOWN_TYPES = ("text/markdown", "text/plain")


class ImportHandler(BaseHandler):
    openapi = {
        "post": {
            "summary": "Import a Markdown text (the body, `text/markdown`) as a new document "
            "(Markdown: headings, lists, to-dos, quotes, code, tables, images, links)",
            "query": ImportQuerySchema,
            "text_body": MARKDOWN_TYPES,
            "response": DocumentSchema,
            "status": 201,
        }
    }

    @signed_in
    async def post(self, principal: Principal, workspace_id: str) -> None:
        args = self.load_query(ImportQuerySchema())
        markdown = self.text_body(MARKDOWN_TYPES)
        placement = Placement(
            workspace_id,
            str(args["board_id"]) if "board_id" in args else None,
            str(args["parent_id"]) if "parent_id" in args else None,
        )
        doc = await import_markdown(
            self.ctx, principal.user_id, placement, markdown, args.get("title")
        )
        self.send(DocumentSchema().dump(doc), 201)


ROUTES = [route("/api/v1/workspaces/{workspace_id}/import/", ImportHandler)]
