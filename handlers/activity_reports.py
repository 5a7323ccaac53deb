"""`/api/v1/workspaces/{workspace_id}/activity-reports/`: the weekly reports of a workspace."""

from __future__ import annotations

from handlers.base import BaseHandler, signed_in
from handlers.routing import route
from handlers.schemas.activity_reports import ActivityReportPageSchema
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


ROUTES = [
    route("/api/v1/workspaces/{workspace_id}/activity-reports/", ActivityReportsHandler),
]
