"""`/api/v1/workspaces/{workspace_id}/activity-reports/`: the weekly reports of a workspace."""

from __future__ import annotations

from handlers.base import BaseHandler, signed_in
from handlers.routing import route
from handlers.schemas.activity_reports import ActivityReportPageSchema, ReportEmailSchema
from handlers.schemas.common import PageQuerySchema
from handlers.workspaces import send_page
from services import activity_reports
from services.auth_guard import Principal


class ActivityReportsHandler(BaseHandler):
    openapi = {
        "get": {
            "summary": "Weekly activity reports of a workspace, newest week first "
            "(workspace Owners and Admins)",
            "query": PageQuerySchema,
            "response": ActivityReportPageSchema,
        }
    }

    @signed_in
    async def get(self, principal: Principal, workspace_id: str) -> None:
        await send_page(
            self,
            ActivityReportPageSchema,
            lambda limit, offset: activity_reports.list_reports(
                self.ctx, principal.user_id, workspace_id, limit, offset
            ),
        )


class ReportEmailHandler(BaseHandler):
    openapi = {
        "get": {
            "summary": "Whether I get this workspace's weekly activity report by email "
            "(Owners and Admins)",
            "response": ReportEmailSchema,
        },
        "put": {
            "summary": "Opt in to (or out of) the weekly activity report by email "
            "(Owners and Admins)",
            "body": ReportEmailSchema,
            "response": ReportEmailSchema,
        },
    }

    @signed_in
    async def get(self, principal: Principal, workspace_id: str) -> None:
        state = await activity_reports.get_email_opt_in(self.ctx, principal.user_id, workspace_id)
        self.send(ReportEmailSchema().dump(state))

    @signed_in
    async def put(self, principal: Principal, workspace_id: str) -> None:
        wanted = self.load_body(ReportEmailSchema())["email"]
        state = await activity_reports.set_email_opt_in(
            self.ctx, principal.user_id, workspace_id, wanted
        )
        self.send(ReportEmailSchema().dump(state))


ROUTES = [
    route("/api/v1/workspaces/{workspace_id}/activity-reports/", ActivityReportsHandler),
    route("/api/v1/workspaces/{workspace_id}/activity-reports/subscription/", ReportEmailHandler),
]
