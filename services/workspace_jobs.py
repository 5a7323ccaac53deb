"""Periodic workspace jobs: deliver deferred activity events, purge deleted workspaces.

Activity events are staged in the outbox in the same transaction as their change and published
after commit; when JetStream was down at that moment they wait in the outbox, and this relay sends
them (same `Nats-Msg-Id`, so a double send is deduplicated). Soft-deleted workspaces are hard-deleted
after their grace period; their documents' log subjects are then orphans, which the document job
purges (`services/snapshot_job.py`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import structlog

from services import activity
from services.workspaces import purge_deleted_workspaces

if TYPE_CHECKING:
    from server.context import AppContext
    from server.scheduler import Scheduler

log = structlog.get_logger(__name__)

ACTIVITY_RELAY_JOB = "relay_activity_outbox"
WORKSPACE_PURGE_JOB = "purge_deleted_workspaces"
ACTIVITY_RELAY_INTERVAL_S = 15.0
# Deleted workspaces wait out a 30-day grace period; hourly is prompt enough after that.
WORKSPACE_PURGE_INTERVAL_S = 3600.0


async def relay_activity(ctx: AppContext) -> None:
    sent = await activity.relay_pending(ctx)
    if sent:
        log.info("activity.relayed", count=sent)


async def purge_workspaces(ctx: AppContext) -> None:
    purged = await purge_deleted_workspaces(ctx)
    for workspace in purged:
        log.info(
            "workspace.purged",
            workspace_id=workspace.workspace_id,
            documents=len(workspace.document_ids),
        )


def register_workspace_jobs(scheduler: Scheduler, ctx: AppContext) -> None:
    scheduler.register(ACTIVITY_RELAY_JOB, relay_activity, ACTIVITY_RELAY_INTERVAL_S)
    scheduler.register(WORKSPACE_PURGE_JOB, purge_workspaces, WORKSPACE_PURGE_INTERVAL_S)
