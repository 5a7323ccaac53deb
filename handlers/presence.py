"""`GET /api/v1/documents/{doc_id}/presence/`: who has the document open right now (any node)."""

from __future__ import annotations

from handlers.base import BaseHandler, parse_uuid
from handlers.routing import route
from handlers.schemas.presence import DocumentPresenceSchema
from services import policy
from services.policy import Action, Resource
from services.presence import PresenceService


class DocumentPresenceHandler(BaseHandler):
    openapi = {
        "get": {
            "summary": "Users connected to the document (503 presence_unavailable if Redis is down)",
            "response": DocumentPresenceSchema,
        }
    }

    async def get(self, doc_id: str) -> None:
        principal = await self.require_user()
        document_id = parse_uuid(doc_id, "doc_id")
        await policy.require(
            self.ctx, principal.user_id, Action.DOCUMENT_VIEW, Resource.document(document_id)
        )
        presence: PresenceService = self.ctx.presence
        users = await presence.online(document_id)
        self.send(DocumentPresenceSchema().dump({"document_id": document_id, "users": users}))


ROUTES = [route("/api/v1/documents/{doc_id}/presence/", DocumentPresenceHandler)]
