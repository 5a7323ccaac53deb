"""`/api/v1/admin/…`: instance administration (services/user_admin.py), instance admins only."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from handlers.base import BaseHandler, signed_in
from handlers.routing import route
from handlers.schemas.admin import (
    AdminUserPageSchema,
    AdminUserQuerySchema,
    AdminUserSchema,
    AdminWorkspacePageSchema,
    AdminWorkspaceSchema,
    JobListSchema,
    JobRunNowSchema,
    JobSchema,
    StreamHealthSchema,
)
from handlers.schemas.auth import EmptySchema
from handlers.schemas.common import PageQuerySchema
from handlers.workspaces import send_page
from services import job_admin, policy, stream_health, user_admin, workspace_admin
from services.auth_guard import Principal
from services.deps import Deps


class AdminUsersHandler(BaseHandler):
    openapi = {
        "get": {
            "summary": "Every account, in email order (instance admins only)",
            "query": AdminUserQuerySchema,
            "response": AdminUserPageSchema,
        }
    }

    @signed_in
    async def get(self, principal: Principal) -> None:
        query = self.load_query(AdminUserQuerySchema())
        await policy.require_instance_admin(self.ctx.db, principal.user_id)
        found = await user_admin.list_users(
            self.ctx.db, limit=query["limit"] + 1, after_email=query["after"]
        )
        items = found[: query["limit"]]
        more = len(found) > query["limit"]
        body = {"items": items, "next_after": items[-1].email if more else None}
        self.send(AdminUserPageSchema().dump(body))


class AdminUserActionHandler(BaseHandler):
    """One admin action on one user (a subclass names it); the body must be empty."""

    action: Callable[[Deps, str, str], Awaitable[user_admin.AdminUser]]

    @signed_in
    async def post(self, principal: Principal, user_id: str) -> None:
        self.load_body(EmptySchema())
        await policy.require_instance_admin(self.ctx.db, principal.user_id)
        user = await type(self).action(self.ctx, user_id, principal.user_id)
        self.send(AdminUserSchema().dump(user))


class AdminUserDeactivateHandler(AdminUserActionHandler):
    openapi = {
        "post": {
            "summary": "Deactivate an account: login refused, every session revoked, its "
            "sockets closed (instance admins only; audited)",
            "body": EmptySchema,
            "response": AdminUserSchema,
        }
    }
    action = staticmethod(user_admin.deactivate)


class AdminUserActivateHandler(AdminUserActionHandler):
    openapi = {
        "post": {
            "summary": "Activate an account again (old tokens stay void; instance admins only; "
            "audited)",
            "body": EmptySchema,
            "response": AdminUserSchema,
        }
    }
    action = staticmethod(user_admin.activate)


class AdminWorkspacesHandler(BaseHandler):
    openapi = {
        "get": {
            "summary": "Every workspace, soft-deleted ones too (instance admins only)",
            "query": PageQuerySchema,
            "response": AdminWorkspacePageSchema,
        }
    }

    @signed_in
    async def get(self, principal: Principal) -> None:
        self.load_query(PageQuerySchema())
        await policy.require_instance_admin(self.ctx.db, principal.user_id)
        await send_page(
            self,
            AdminWorkspacePageSchema,
            lambda limit, offset: workspace_admin.list_workspaces(self.ctx, limit, offset),
        )


class AdminWorkspaceRestoreHandler(BaseHandler):
    openapi = {
        "post": {
            "summary": "Restore a soft-deleted workspace within its grace period (instance "
            "admins only; audited)",
            "body": EmptySchema,
            "response": AdminWorkspaceSchema,
        }
    }

    @signed_in
    async def post(self, principal: Principal, workspace_id: str) -> None:
        self.load_body(EmptySchema())
        await policy.require_instance_admin(self.ctx.db, principal.user_id)
        restored = await workspace_admin.restore_workspace(
            self.ctx, workspace_id, principal.user_id
        )
        self.send(AdminWorkspaceSchema().dump(restored))


class AdminJobsHandler(BaseHandler):
    openapi = {
        "get": {
            "summary": "Background jobs: interval, next run on this node, last runs from the "
            "history (instance admins only)",
            "response": JobListSchema,
        }
    }

    @signed_in
    async def get(self, principal: Principal) -> None:
        await policy.require_instance_admin(self.ctx.db, principal.user_id)
        jobs = await job_admin.list_jobs(self.ctx.db, self.ctx.scheduler)
        self.send(JobListSchema().dump({"items": jobs}))


class AdminJobRunHandler(BaseHandler):
    openapi = {
        "post": {
            "summary": "Run a job now, under its one-runner lock (instance admins only; audited)",
            "body": EmptySchema,
            "response": JobRunNowSchema,
        }
    }

    @signed_in
    async def post(self, principal: Principal, job_name: str) -> None:
        self.load_body(EmptySchema())
        await policy.require_instance_admin(self.ctx.db, principal.user_id)
        result = await job_admin.run_job(self.ctx, self.ctx.scheduler, job_name, principal.user_id)
        self.send(JobRunNowSchema().dump(result))


class AdminJobPauseHandler(BaseHandler):
    """Pause (or, in the subclass, resume) a job on every node; the body must be empty."""

    openapi = {
        "post": {
            "summary": "Pause a job on every node: scheduled runs are skipped until it is "
            "resumed; run now still works (instance admins only; audited)",
            "body": EmptySchema,
            "response": JobSchema,
        }
    }
    pause = True

    @signed_in
    async def post(self, principal: Principal, job_name: str) -> None:
        self.load_body(EmptySchema())
        await policy.require_instance_admin(self.ctx.db, principal.user_id)
        job = await job_admin.set_paused(
            self.ctx, self.ctx.scheduler, job_name, type(self).pause, principal.user_id
        )
        self.send(JobSchema().dump(job))


class AdminJobResumeHandler(AdminJobPauseHandler):
    openapi = {
        "post": {
            "summary": "Resume a paused job (instance admins only; audited)",
            "body": EmptySchema,
            "response": JobSchema,
        }
    }
    pause = False


class AdminStreamHealthHandler(BaseHandler):
    openapi = {
        "get": {
            "summary": "Document log usage against its limits, with the alert level "
            "(what `collab stream-health` reports; instance admins only)",
            "response": StreamHealthSchema,
        }
    }

    @signed_in
    async def get(self, principal: Principal) -> None:
        await policy.require_instance_admin(self.ctx.db, principal.user_id)
        self.send(StreamHealthSchema().dump(await stream_health.report(self.ctx.nats)))


ROUTES = [
    route("/api/v1/admin/users/", AdminUsersHandler),
    route("/api/v1/admin/users/{user_id}/deactivate/", AdminUserDeactivateHandler),
    route("/api/v1/admin/users/{user_id}/activate/", AdminUserActivateHandler),
    route("/api/v1/admin/workspaces/", AdminWorkspacesHandler),
    route("/api/v1/admin/workspaces/{workspace_id}/restore/", AdminWorkspaceRestoreHandler),
    route("/api/v1/admin/jobs/", AdminJobsHandler),
    route("/api/v1/admin/jobs/{job_name}/run/", AdminJobRunHandler),
    route("/api/v1/admin/jobs/{job_name}/pause/", AdminJobPauseHandler),
    route("/api/v1/admin/jobs/{job_name}/resume/", AdminJobResumeHandler),
    route("/api/v1/admin/stream-health/", AdminStreamHealthHandler),
]
