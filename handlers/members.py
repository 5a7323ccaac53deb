"""`/api/v1/workspaces/{id}/members/`: list, change role, remove, leave, transfer ownership."""

from __future__ import annotations

from handlers.base import BaseHandler, signed_in
from handlers.routing import route
from handlers.schemas.auth import EmptySchema
from handlers.schemas.common import PageQuerySchema
from handlers.schemas.workspaces import (
    MentionableQuerySchema,
    MentionCandidatesSchema,
    TransferOwnershipSchema,
    WorkspaceMemberPageSchema,
    WorkspaceMemberRoleSchema,
    WorkspaceMemberSchema,
)
from handlers.workspaces import send_page
from services import workspaces as service
from services.auth_guard import Principal
from services.mention_candidates import MentionQuery, mentionable


class MembersHandler(BaseHandler):
    openapi = {
        "get": {
            "summary": "Members of a workspace with their roles",
            "query": PageQuerySchema,
            "response": WorkspaceMemberPageSchema,
        }
    }

    @signed_in
    async def get(self, principal: Principal, workspace_id: str) -> None:
        await send_page(
            self,
            WorkspaceMemberPageSchema,
            lambda limit, offset: service.list_members(
                self.ctx, principal.user_id, workspace_id, limit, offset
            ),
        )


class MemberHandler(BaseHandler):
    openapi = {
        "patch": {
            "summary": "Change a member's role (Admin+; never above your own; Owners by Owners)",
            "body": WorkspaceMemberRoleSchema,
            "response": WorkspaceMemberSchema,
        },
        "delete": {
            "summary": "Remove a member (Admin+; Owners by Owners; never the last Owner)",
            "status": 204,
        },
    }

    @signed_in
    async def patch(self, principal: Principal, workspace_id: str, user_id: str) -> None:
        data = self.load_body(WorkspaceMemberRoleSchema())
        member = await service.change_member_role(
            self.ctx, principal.user_id, workspace_id, user_id, data["role"]
        )
        self.send(WorkspaceMemberSchema().dump(member))

    @signed_in
    async def delete(self, principal: Principal, workspace_id: str, user_id: str) -> None:
        self.load_body(EmptySchema())
        await service.remove_member(self.ctx, principal.user_id, workspace_id, user_id)
        self.send(None, 204)


class LeaveHandler(BaseHandler):
    openapi = {"post": {"summary": "Leave a workspace (not as its last Owner)", "status": 204}}

    @signed_in
    async def post(self, principal: Principal, workspace_id: str) -> None:
        self.load_body(EmptySchema())
        await service.leave_workspace(self.ctx, principal.user_id, workspace_id)
        self.send(None, 204)


class TransferOwnershipHandler(BaseHandler):
    openapi = {
        "post": {
            "summary": "Make another member Owner; you become Admin (Owner only)",
            "body": TransferOwnershipSchema,
            "status": 204,
        }
    }

    @signed_in
    async def post(self, principal: Principal, workspace_id: str) -> None:
        data = self.load_body(TransferOwnershipSchema())
        await service.transfer_ownership(
            self.ctx, principal.user_id, workspace_id, str(data["user_id"])
        )
        self.send(None, 204)


class MentionableHandler(BaseHandler):
    openapi = {
        "get": {
            "summary": "Members I may @mention (autocomplete): name or email prefix, with "
            "`can_view` for a document",
            "query": MentionableQuerySchema,
            "response": MentionCandidatesSchema,
        }
    }

    @signed_in
    async def get(self, principal: Principal, workspace_id: str) -> None:
        args = self.load_query(MentionableQuerySchema())
        document_id = args.get("document_id")
        query = MentionQuery(
            q=args["q"],
            document_id=str(document_id) if document_id is not None else None,
            limit=args["limit"],
        )
        items = await mentionable(self.ctx, principal.user_id, workspace_id, query)
        self.send(MentionCandidatesSchema().dump({"items": items}))


ROUTES = [
    route("/api/v1/workspaces/{workspace_id}/members/", MembersHandler),
    route("/api/v1/workspaces/{workspace_id}/members/{user_id}/", MemberHandler),
    route("/api/v1/workspaces/{workspace_id}/leave/", LeaveHandler),
    route("/api/v1/workspaces/{workspace_id}/mentionable/", MentionableHandler),
    route("/api/v1/workspaces/{workspace_id}/transfer-ownership/", TransferOwnershipHandler),
]
