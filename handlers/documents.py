"""`/api/v1/documents/`: document headers with their content, duplicate, versions and restore."""

from __future__ import annotations

from handlers.base import BaseHandler, signed_in
from handlers.input_guard import attempt_key
from handlers.routing import route
from handlers.schemas.auth import EmptySchema
from handlers.schemas.common import PageQuerySchema
from handlers.schemas.documents import (
    DocumentCreateSchema,
    DocumentGrantListSchema,
    DocumentGrantSchema,
    DocumentListQuerySchema,
    DocumentPageSchema,
    DocumentSchema,
    DocumentUpdateSchema,
    DuplicateSchema,
    GrantPutSchema,
    PrivacyPutSchema,
    PrivacySchema,
    RestoreResultSchema,
    VersionCreateSchema,
    VersionDetailSchema,
    VersionDiffSchema,
    VersionPageSchema,
    VersionSchema,
)
from handlers.workspaces import send_page
from services import documents as service
from services import sharing, versions
from services.auth_guard import Principal
from services.documents import ListFilter, Placement

_document = DocumentSchema()
_version = VersionSchema()


def _str(value: object) -> str | None:
    return None if value is None else str(value)


class DocumentsHandler(BaseHandler):
    openapi = {
        "get": {
            "summary": "Documents of a workspace I may view (filter by board / parent page)",
            "query": DocumentListQuerySchema,
            "response": DocumentPageSchema,
        },
        "post": {
            "summary": "Create a document (optionally on a board, or as a sub-page of a parent)",
            "body": DocumentCreateSchema,
            "response": DocumentSchema,
            "status": 201,
        },
    }

    @signed_in
    async def get(self, principal: Principal) -> None:
        query = self.load_query(DocumentListQuerySchema())
        where = ListFilter(
            workspace_id=str(query["workspace_id"]),
            board_id=_str(query.get("board_id")),
            parent_id=_str(query.get("parent_id")),
            top_level=query["top_level"],
        )
        limit, offset = query["limit"], query["offset"]
        # Same page shape as handlers.workspaces.send_page: one extra row says "there is more".
        rows = await service.list_documents(self.ctx, principal.user_id, where, limit + 1, offset)
        page = {
            "items": rows[:limit],
            "limit": limit,
            "offset": offset,
            "next_offset": offset + limit if len(rows) > limit else None,
        }
        self.send(DocumentPageSchema().dump(page))

    @signed_in
    async def post(self, principal: Principal) -> None:
        data = self.load_body(DocumentCreateSchema())
        placement = Placement(
            str(data["workspace_id"]), _str(data["board_id"]), _str(data["parent_id"])
        )
        doc = await service.create_document(
            self.ctx, principal.user_id, placement, data["title"], data.get("fragment")
        )
        self.send(_document.dump(doc), 201)


class DocumentHandler(BaseHandler):
    openapi = {
        "get": {"summary": "A document: metadata, version and content", "response": DocumentSchema},
        "patch": {
            "summary": "Rename, or move under another page (parent_id null: top level)",
            "body": DocumentUpdateSchema,
            "response": DocumentSchema,
        },
        "delete": {
            "summary": "Delete a document and its sub-pages (soft; Manage permission)",
            "status": 204,
        },
    }

    @signed_in
    async def get(self, principal: Principal, doc_id: str) -> None:
        self.send(_document.dump(await service.get_document(self.ctx, principal.user_id, doc_id)))

    @signed_in
    async def patch(self, principal: Principal, doc_id: str) -> None:
        patch = service.DocumentPatch.of(self.load_body(DocumentUpdateSchema()))
        doc = await service.update_document(self.ctx, principal.user_id, doc_id, patch)
        self.send(_document.dump(doc))

    @signed_in
    async def delete(self, principal: Principal, doc_id: str) -> None:
        self.load_body(EmptySchema())
        await service.delete_document(self.ctx, principal.user_id, doc_id)
        self.send(None, 204)


class DuplicateHandler(BaseHandler):
    openapi = {
        "post": {
            "summary": "Duplicate a document with its current content (title: 'Copy of …')",
            "body": DuplicateSchema,
            "response": DocumentSchema,
            "status": 201,
        }
    }

    @signed_in
    async def post(self, principal: Principal, doc_id: str) -> None:
        data = self.load_body(DuplicateSchema())
        doc = await service.duplicate_document(
            self.ctx, principal.user_id, doc_id, data.get("title")
        )
        self.send(_document.dump(doc), 201)


class VersionsHandler(BaseHandler):
    openapi = {
        "get": {
            "summary": "Versions of a document, newest first",
            "query": PageQuerySchema,
            "response": VersionPageSchema,
        },
        "post": {
            "summary": "Save the current content as a named version (Edit permission)",
            "body": VersionCreateSchema,
            "response": VersionSchema,
            "status": 201,
        },
    }

    @signed_in
    async def get(self, principal: Principal, doc_id: str) -> None:
        await send_page(
            self,
            VersionPageSchema,
            lambda limit, offset: versions.list_versions(
                self.ctx, principal.user_id, doc_id, limit, offset
            ),
        )

    @signed_in
    async def post(self, principal: Principal, doc_id: str) -> None:
        data = self.load_body(VersionCreateSchema())
        version = await versions.create_named_version(
            self.ctx, principal.user_id, doc_id, data["name"].strip()
        )
        self.send(_version.dump(version), 201)


class VersionHandler(BaseHandler):
    openapi = {"get": {"summary": "One version with its content", "response": VersionDetailSchema}}

    @signed_in
    async def get(self, principal: Principal, doc_id: str, version_id: str) -> None:
        version = await versions.get_version(self.ctx, principal.user_id, doc_id, version_id)
        self.send(VersionDetailSchema().dump(version))


class VersionDiffHandler(BaseHandler):
    openapi = {
        "get": {
            "summary": "What changed from one version to another: blocks added, removed, moved, "
            "changed (with a text diff), other roots",
            "response": VersionDiffSchema,
        }
    }

    @signed_in
    async def get(self, principal: Principal, doc_id: str, version_id: str, other_id: str) -> None:
        diff = await versions.diff_versions(
            self.ctx, principal.user_id, doc_id, version_id, other_id
        )
        self.send(VersionDiffSchema().dump(diff))


class RestoreHandler(BaseHandler):
    openapi = {
        "post": {
            "summary": "Restore a version into the live document (a new update; history kept). "
            "Send Idempotency-Key to make retries safe.",
            "body": EmptySchema,
            "response": RestoreResultSchema,
            "status": (201, 200),
            "idempotency_key": True,
        }
    }

    @signed_in
    async def post(self, principal: Principal, doc_id: str, version_id: str) -> None:
        self.load_body(EmptySchema())
        restored, applied = await versions.restore_version(
            self.ctx, principal.user_id, doc_id, version_id, attempt_key(self)
        )
        body = {"restored_from": version_id, "version": restored, "applied": applied}
        self.send(RestoreResultSchema().dump(body), 201 if applied else 200)


class PrivacyHandler(BaseHandler):
    openapi = {
        "put": {
            "summary": "Make a page private, not private, or as its parent (null); sub-pages that "
            "do not set their own follow (Manage permission)",
            "body": PrivacyPutSchema,
            "response": PrivacySchema,
        }
    }

    @signed_in
    async def put(self, principal: Principal, doc_id: str) -> None:
        data = self.load_body(PrivacyPutSchema())
        result = await service.set_privacy(self.ctx, principal.user_id, doc_id, data["is_private"])
        self.send(PrivacySchema().dump(result))


class GrantsHandler(BaseHandler):
    openapi = {
        "get": {
            "summary": "Explicit grants on a document (Manage permission)",
            "response": DocumentGrantListSchema,
        }
    }

    @signed_in
    async def get(self, principal: Principal, doc_id: str) -> None:
        grants = await sharing.list_grants(self.ctx, principal.user_id, doc_id)
        self.send(DocumentGrantListSchema().dump({"items": grants}))


class GrantHandler(BaseHandler):
    openapi = {
        "put": {
            "summary": "Share the document with a workspace member, or change their role",
            "body": GrantPutSchema,
            "response": DocumentGrantSchema,
        },
        "delete": {"summary": "Remove a member's explicit grant", "status": 204},
    }

    @signed_in
    async def put(self, principal: Principal, doc_id: str, user_id: str) -> None:
        data = self.load_body(GrantPutSchema())
        grant = await sharing.set_grant(self.ctx, principal.user_id, doc_id, user_id, data["role"])
        self.send(DocumentGrantSchema().dump(grant))

    @signed_in
    async def delete(self, principal: Principal, doc_id: str, user_id: str) -> None:
        self.load_body(EmptySchema())
        await sharing.remove_grant(self.ctx, principal.user_id, doc_id, user_id)
        self.send(None, 204)


ROUTES = [
    route("/api/v1/documents/", DocumentsHandler),
    route("/api/v1/documents/{doc_id}/", DocumentHandler),
    route("/api/v1/documents/{doc_id}/duplicate/", DuplicateHandler),
    route("/api/v1/documents/{doc_id}/versions/", VersionsHandler),
    route("/api/v1/documents/{doc_id}/versions/{version_id}/", VersionHandler),
    route("/api/v1/documents/{doc_id}/versions/{version_id}/restore/", RestoreHandler),
    route("/api/v1/documents/{doc_id}/versions/{version_id}/diff/{other_id}/", VersionDiffHandler),
    route("/api/v1/documents/{doc_id}/privacy/", PrivacyHandler),
    route("/api/v1/documents/{doc_id}/grants/", GrantsHandler),
    route("/api/v1/documents/{doc_id}/grants/{user_id}/", GrantHandler),
]
