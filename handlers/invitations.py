"""Invitations: create, list pending and revoke under a workspace; accept by token."""

from __future__ import annotations

from handlers.base import BaseHandler, signed_in
from handlers.routing import route
from handlers.schemas.auth import EmptySchema
from handlers.schemas.common import PageQuerySchema
from handlers.schemas.workspaces import (
    CreatedInvitationSchema,
    InvitationPageSchema,
    InviteSchema,
    WorkspaceSchema,
)
from handlers.workspaces import send_page
from services import workspaces as service
from services.auth_guard import Principal


class InviteHandler(BaseHandler):
    openapi = {
        "post": {
            "summary": "Invite by email with a role up to your own (the token is shown once)",
            "body": InviteSchema,
            "response": CreatedInvitationSchema,
            "status": 201,
        }
    }

    @signed_in
    async def post(self, principal: Principal, workspace_id: str) -> None:
        data = self.load_body(InviteSchema())
        created = await service.invite(
            self.ctx, principal.user_id, workspace_id, data["email"], data["role"]
        )
        body = CreatedInvitationSchema().dump(created.invitation)
        self.send({**body, "token": created.token, "accept_path": created.accept_path}, 201)


class InvitationsHandler(BaseHandler):
    openapi = {
        "get": {
            "summary": "Pending invitations (all for Admins, your own for Members)",
            "query": PageQuerySchema,
            "response": InvitationPageSchema,
        }
    }

    @signed_in
    async def get(self, principal: Principal, workspace_id: str) -> None:
        await send_page(
            self,
            InvitationPageSchema,
            lambda limit, offset: service.list_invitations(
                self.ctx, principal.user_id, workspace_id, limit, offset
            ),
        )


class InvitationHandler(BaseHandler):
    openapi = {
        "delete": {
            "summary": "Revoke a pending invitation (Admins: any; Members: their own)",
            "status": 204,
        }
    }

    @signed_in
    async def delete(self, principal: Principal, workspace_id: str, invitation_id: str) -> None:
        self.load_body(EmptySchema())
        await service.revoke_invitation(self.ctx, principal.user_id, workspace_id, invitation_id)
        self.send(None, 204)


class AcceptInvitationHandler(BaseHandler):
    openapi = {
        "post": {
            "summary": "Accept an invitation sent to my email (single use)",
            "response": WorkspaceSchema,
        }
    }

    @signed_in
    async def post(self, principal: Principal, token: str) -> None:
        self.load_body(EmptySchema())
        workspace = await service.accept_invitation(self.ctx, principal.user_id, token)
        self.send(WorkspaceSchema().dump(workspace))


ROUTES = [
    route("/api/v1/workspaces/{workspace_id}/invite/", InviteHandler),
    route("/api/v1/workspaces/{workspace_id}/invitations/", InvitationsHandler),
    route("/api/v1/workspaces/{workspace_id}/invitations/{invitation_id}/", InvitationHandler),
    route("/api/v1/invitations/{token}/accept/", AcceptInvitationHandler),
]
