"""Weekly workspace activity reports (the `generate_activity_reports` job) and reading them.

**Source.** Every activity event (`collab.workspace.<id>.activity`) is staged in the `outbox`
table in its change's transaction (`bus/outbox.py`) and the row is kept after publishing, so a
week of a workspace's activity is one indexed query on Postgres — no JetStream replay, and exactly
the events the change committed (board events included, through their activity copies). A future
pruning of the outbox must keep `activity_event` rows for at least a week and a day.

**A report** covers one ISO week, Monday 00:00 UTC to the next: `events` (all), `edits` (changes to
existing things: `*.updated`, `document.restored`), `new_documents` (`document.created`),
`cards_moved` (`card.moved`), and the top contributors (the five actors with the most events).
Document content typed in the editor is not an activity event (it is the document log) and is
not counted.

**The job** runs hourly; once a week has ended it writes that week's report for every live
workspace that has none yet, `WORKSPACES_PER_RUN` at a time (the next runs take the rest); one
row per (workspace, week), so a second run, or a run on another node, writes nothing twice.

**Reading**: workspace Owners and Admins (`workspace:update`), newest week first.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from datetime import UTC, datetime, timedelta
from typing import Any

from models.repo import activity_reports as repo
from models.repo import doc_content as content_repo
from services import policy
from services.deps import Deps
from services.policy import Action, Resource

REPORT_JOB = "generate_activity_reports"
REPORT_EVERY_S = 3600.0
WORKSPACES_PER_RUN = 200
TOP_CONTRIBUTORS = 5


def last_full_week(now: datetime) -> tuple[datetime, datetime]:
    """[Monday 00:00 UTC, next Monday) of the last week that has ended by `now`."""
    today = now.astimezone(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    this_monday = today - timedelta(days=today.weekday())
    return this_monday - timedelta(days=7), this_monday


def summarize(rows: list[Any]) -> tuple[dict[str, int], Counter[str]]:
    """Counts and per-actor event totals from (type, actor_id, n) rows of one workspace."""
    counts = {"events": 0, "edits": 0, "new_documents": 0, "cards_moved": 0}
    actors: Counter[str] = Counter()
    for row in rows:
        kind, n = row["type"], int(row["n"])
        counts["events"] += n
        if kind.endswith(".updated") or kind == "document.restored":
            counts["edits"] += n
        elif kind == "document.created":
            counts["new_documents"] += n
        elif kind == "card.moved":
            counts["cards_moved"] += n
        if row["actor_id"]:
            actors[row["actor_id"]] += n
    return counts, actors


async def generate_activity_reports(ctx: Deps, now: datetime | None = None) -> dict[str, int]:
    start, end = last_full_week(now or datetime.now(UTC))
    workspaces = await repo.workspaces_without_report(ctx.db, start, end, WORKSPACES_PER_RUN)
    by_workspace: dict[str, list[Any]] = defaultdict(list)
    if workspaces:
        for row in await repo.event_counts(ctx.db, workspaces, start, end):
            by_workspace[row["workspace_id"]].append(row)
    written = 0
    for workspace_id in workspaces:
        counts, actors = summarize(by_workspace[workspace_id])
        top = actors.most_common(TOP_CONTRIBUTORS)
        names = await content_repo.display_names(ctx.db, [user for user, _ in top])
        contributors = [
            {"user_id": user, "display_name": names.get(user), "events": n} for user, n in top
        ]
        if await repo.insert_report(ctx.db, workspace_id, start, end, counts, contributors):
            written += 1
    return {"workspaces": len(workspaces), "reports": written}


async def list_reports(
    ctx: Deps, actor_id: str, workspace_id: str, limit: int, offset: int
) -> list[dict[str, Any]]:
    await policy.require(ctx, actor_id, Action.WORKSPACE_UPDATE, Resource.workspace(workspace_id))
    return await repo.list_reports(ctx.db, workspace_id, limit, offset)
