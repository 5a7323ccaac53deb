"""Periodic workspace jobs: purge deleted workspaces.

Soft-deleted workspaces are hard-deleted after their grace period; their documents' log subjects
are then orphans, which the document job purges (`services/snapshot_job.py`). Deferred activity
events are relayed by the outbox's one relay job (`bus/outbox.py`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import structlog

from services.workspaces import purge_deleted_workspaces

if TYPE_CHECKING:
    from services.deps import Deps

log = structlog.get_logger(__name__)

WORKSPACE_PURGE_JOB = "purge_deleted_workspaces"
# Deleted workspaces wait out a 30-day grace period; hourly is prompt enough after that.
WORKSPACE_PURGE_INTERVAL_S = 3600.0


async def purge_workspaces(ctx: Deps) -> dict[str, int]:
    """Returns the counts the job history records."""
    purged = await purge_deleted_workspaces(ctx)
    for workspace in purged:
        log.info(
            "workspace.purged",
            workspace_id=workspace.workspace_id,
            documents=len(workspace.document_ids),
        )
    return {"purged": len(purged)}
