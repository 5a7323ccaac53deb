"""`/api/v1/workspaces/`: workspaces, and the boards and documents listed under one."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence

from marshmallow import Schema

from handlers.base import BaseHandler, signed_in
from handlers.routing import route
from handlers.schemas.auth import EmptySchema
from handlers.schemas.common import PageQuerySchema
from handlers.schemas.workspaces import (
    BoardSummaryPageSchema,
    DocumentSummaryPageSchema,
    WorkspaceCreateSchema,
    WorkspaceDeletedSchema,
    WorkspacePageSchema,
    WorkspaceSchema,
    WorkspaceUpdateSchema,
)
from services import visibility
from services import workspaces as service
from services.auth_guard import Principal

_workspace = WorkspaceSchema()

# One page of items (entities or rows) that the page schema serialises.
Lister = Callable[[int, int], Awaitable[Sequence[object]]]


async def send_page(handler: BaseHandler, schema: type[Schema], lister: Lister) -> None:
    """limit/offset pagination: one extra row tells whether there is a next page."""
    query = handler.load_query(PageQuerySchema())
    limit, offset = query["limit"], query["offset"]
    rows = await lister(limit + 1, offset)
    body = {
        "items": rows[:limit],
        "limit": limit,
        "offset": offset,
        "next_offset": offset + limit if len(rows) > limit else None,
    }
    handler.send(schema().dump(body))


class WorkspacesHandler(BaseHandler):
    openapi = {
        "get": {
            "summary": "Workspaces I belong to, with my role",
            "query": PageQuerySchema,
            "response": WorkspacePageSchema,
        },
        "post": {
            "summary": "Create a workspace (the creator becomes its Owner)",
            "body": WorkspaceCreateSchema,
            "response": WorkspaceSchema,
            "status": 201,
        },
    }

    @signed_in
    async def get(self, principal: Principal) -> None:
        await send_page(
            self,
            WorkspacePageSchema,
            lambda limit, offset: service.list_my_workspaces(
                self.ctx, principal.user_id, limit, offset
            ),
        )

    @signed_in
    async def post(self, principal: Principal) -> None:
        data = self.load_body(WorkspaceCreateSchema())
        workspace = await service.create_workspace(
            self.ctx, principal.user_id, data["name"].strip(), data.get("slug")
        )
        self.send(_workspace.dump(workspace), 201)


class WorkspaceHandler(BaseHandler):
    openapi = {
        "get": {"summary": "A workspace, with my role", "response": WorkspaceSchema},
        "patch": {
            "summary": "Rename or re-slug a workspace (Admin+)",
            "body": WorkspaceUpdateSchema,
            "response": WorkspaceSchema,
        },
        "delete": {
            "summary": "Delete a workspace (Owner; soft delete, purged after the grace period)",
            "response": WorkspaceDeletedSchema,
        },
    }

    @signed_in
    async def get(self, principal: Principal, workspace_id: str) -> None:
        workspace = await service.get_workspace(self.ctx, principal.user_id, workspace_id)
        self.send(_workspace.dump(workspace))

    @signed_in
    async def patch(self, principal: Principal, workspace_id: str) -> None:
        patch = service.WorkspacePatch.of(self.load_body(WorkspaceUpdateSchema()))
        workspace = await service.update_workspace(self.ctx, principal.user_id, workspace_id, patch)
        self.send(_workspace.dump(workspace))

    @signed_in
    async def delete(self, principal: Principal, workspace_id: str) -> None:
        self.load_body(EmptySchema())
        purge_after = await service.delete_workspace(self.ctx, principal.user_id, workspace_id)
        self.send(WorkspaceDeletedSchema().dump({"id": workspace_id, "purge_after": purge_after}))


class WorkspaceBoardsHandler(BaseHandler):
    openapi = {
        "get": {
            "summary": "Boards of a workspace that I may view, with my role on each",
            "query": PageQuerySchema,
            "response": BoardSummaryPageSchema,
        }
    }

    @signed_in
    async def get(self, principal: Principal, workspace_id: str) -> None:
        await send_page(
            self,
            BoardSummaryPageSchema,
            lambda limit, offset: visibility.list_boards(
                self.ctx, principal.user_id, workspace_id, limit, offset
            ),
        )


class WorkspaceDocumentsHandler(BaseHandler):
    openapi = {
        "get": {
            "summary": "Documents of a workspace that I may view, with my role on each",
            "query": PageQuerySchema,
            "response": DocumentSummaryPageSchema,
        }
    }

    @signed_in
    async def get(self, principal: Principal, workspace_id: str) -> None:
        await send_page(
            self,
            DocumentSummaryPageSchema,
            lambda limit, offset: visibility.list_documents(
                self.ctx, principal.user_id, workspace_id, limit, offset
            ),
        )


ROUTES = [
    route("/api/v1/workspaces/", WorkspacesHandler),
    route("/api/v1/workspaces/{workspace_id}/", WorkspaceHandler),
    route("/api/v1/workspaces/{workspace_id}/boards/", WorkspaceBoardsHandler),
    route("/api/v1/workspaces/{workspace_id}/documents/", WorkspaceDocumentsHandler),
]
