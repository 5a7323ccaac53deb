"""The admin view of workspaces: every workspace (deleted ones too), and restoring a soft-deleted
one while its grace period runs (after it, the purge job may already have removed it: 410).

A restore is the delete in reverse: one transaction clears `deleted_at` (the row locked against
the purge job), stages `workspace.restored` on the workspace's activity subject and the admin audit
event, and after the commit every node's permission cache for the workspace is dropped (a cached
"deleted → 404" must not outlive the restore).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from functools import partial

from core.errors import Conflict, Gone, NotFound
from models.repo import workspaces as repo
from services import activity, permissions_cache
from services.deps import Deps
from services.unit_of_work import unit_of_work
from services.user_admin import audit
from services.workspace_entities import AdminWorkspace


async def list_workspaces(ctx: Deps, limit: int, offset: int) -> list[AdminWorkspace]:
    rows = await repo.list_all_workspaces(ctx.db, limit, offset)
    return [AdminWorkspace.from_row(row) for row in rows]


async def restore_workspace(ctx: Deps, workspace_id: str, actor_id: str) -> AdminWorkspace:
    grace = timedelta(seconds=ctx.settings.workspace_purge_grace_s)
    async with unit_of_work(ctx) as uow:
        state = await repo.lock_deleted_at(uow.conn, workspace_id)
        if state is None:
            raise NotFound("workspace not found", code="workspace_not_found")
        deleted_at = state["deleted_at"]
        if deleted_at is None:
            raise Conflict("the workspace is not deleted", code="not_deleted")
        if deleted_at + grace < datetime.now(UTC):
            raise Gone("the workspace's grace period is over", code="grace_expired")
        row = await repo.undelete_workspace(uow.conn, workspace_id)
        await uow.emit(
            activity.event(workspace_id, "workspace.restored", actor_id, {"deleted_at": deleted_at})
        )
        await audit(uow, "workspace_restored", actor_id, {"workspace_id": workspace_id})
        uow.on_commit(partial(permissions_cache.invalidate_workspace, ctx, workspace_id))
    return AdminWorkspace.from_row(row)
