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

**Email**: an Owner or Admin who opted in (`workspace_members.activity_report_email`, set through
the API) gets the report by mail: the job stages one outbox row per recipient in the report's own
transaction, and the mail job (`services/mailer.py`) builds and sends it off the request path —
checking again that the recipient is still an active Owner/Admin who wants it.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from typing import Any

from models.db import Database
from models.repo import activity_reports as repo
from models.repo import doc_content as content_repo
from models.repo import outbox as outbox_repo
from models.repo import users as users_repo
from server.settings import Settings
from services import policy
from services.deps import Deps
from services.mail_messages import absolute_url, compose, render
from services.policy import Action, Resource

REPORT_JOB = "generate_activity_reports"
REPORT_EVERY_S = 3600.0
WORKSPACES_PER_RUN = 200
TOP_CONTRIBUTORS = 5
REPORT_EMAIL_KIND = "activity_report_email"


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
    written = mails = 0
    for workspace_id in workspaces:
        counts, actors = summarize(by_workspace[workspace_id])
        top = actors.most_common(TOP_CONTRIBUTORS)
        names = await content_repo.display_names(ctx.db, [user for user, _ in top])
        contributors = [
            {"user_id": user, "display_name": names.get(user), "events": n} for user, n in top
        ]
        async with ctx.db.transaction() as conn:
            report_id = await repo.insert_report(
                conn, workspace_id, start, end, counts, contributors
            )
            if report_id is None:
                continue
            written += 1
            for user_id in await repo.email_recipients(conn, workspace_id):
                payload = {"report_id": report_id, "user_id": user_id}
                await outbox_repo.insert(conn, REPORT_EMAIL_KIND, payload)
                mails += 1
    return {"workspaces": len(workspaces), "reports": written, "emails_queued": mails}


async def list_reports(
    ctx: Deps, actor_id: str, workspace_id: str, limit: int, offset: int
) -> list[dict[str, Any]]:
    await policy.require(ctx, actor_id, Action.WORKSPACE_UPDATE, Resource.workspace(workspace_id))
    return await repo.list_reports(ctx.db, workspace_id, limit, offset)


async def get_email_opt_in(ctx: Deps, actor_id: str, workspace_id: str) -> dict[str, bool]:
    await policy.require(ctx, actor_id, Action.WORKSPACE_UPDATE, Resource.workspace(workspace_id))
    return {"email": await repo.wants_email(ctx.db, workspace_id, actor_id)}


async def set_email_opt_in(
    ctx: Deps, actor_id: str, workspace_id: str, wanted: bool
) -> dict[str, bool]:
    await policy.require(ctx, actor_id, Action.WORKSPACE_UPDATE, Resource.workspace(workspace_id))
    await repo.set_email(ctx.db, workspace_id, actor_id, wanted)
    return {"email": wanted}


async def activity_report_mail(
    db: Database, settings: Settings, payload: dict[str, Any]
) -> EmailMessage | None:
    """The mail job's builder for `REPORT_EMAIL_KIND`; None (nothing sent) when the report is gone
    or the recipient is no longer an active Owner/Admin who wants it."""
    report = await repo.get_report(db, payload["report_id"])
    user = await users_repo.get_user(db, payload["user_id"])
    if report is None or user is None or not user["is_active"]:
        return None
    if not await repo.wants_email(db, report["workspace_id"], str(user["id"])):
        return None
    path = f"/api/v1/workspaces/{report['workspace_id']}/activity-reports/"
    context = {
        "display_name": user["display_name"],
        "workspace_name": report["workspace_name"],
        "week_start": report["week_start"].date().isoformat(),
        "week_end": (report["week_end"] - timedelta(days=1)).date().isoformat(),
        "counts": report["counts"],
        "contributors": report["top_contributors"],
        "report_url": absolute_url(settings, path),
    }
    return compose(settings, user["email"], render("activity_report", context))
