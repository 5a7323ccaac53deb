"""Weekly activity reports: real changes through the API stage activity events; the
`generate_activity_reports` job (through the scheduler) turns last week's into one report per
workspace (counts, top contributors), writes its history row, writes nothing twice, and the
report is readable by workspace Owners/Admins only."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime

import pytest

from models.repo import job_runs
from server.settings import Settings
from services.activity_reports import REPORT_EMAIL_KIND, REPORT_JOB, last_full_week
from services.mailer import MAIL_JOB
from tests.mail_support import settle_other_mail, smtp_settings, text_of
from tests.ws_helpers import add_member, create_workspace


@pytest.fixture
def settings(settings: Settings, smtp) -> Settings:
    """The mail job of these tests sends to a real (local) SMTP server."""
    return dataclasses.replace(smtp_settings(settings, smtp))


async def test_last_full_week_is_monday_to_monday_utc():
    start, end = last_full_week(datetime(2026, 12, 2, 13, 0, tzinfo=UTC))  # a Wednesday
    assert (start, end) == (datetime(2026, 11, 23, tzinfo=UTC), datetime(2026, 11, 30, tzinfo=UTC))
    start, end = last_full_week(datetime(2026, 11, 30, 0, 0, tzinfo=UTC))  # Monday midnight
    assert end == datetime(2026, 11, 30, tzinfo=UTC)


async def one_week_back(ctx, workspace_id: str) -> None:
    """As if everything had happened last week (the job reports on weeks that have ended)."""
    await ctx.db.execute(
        "UPDATE outbox SET created_at = created_at - interval '7 days'"
        " WHERE kind = 'activity_event' AND payload->'event'->>'workspace_id' = $1",
        workspace_id,
    )
    await ctx.db.execute(
        "UPDATE workspaces SET created_at = created_at - interval '8 days' WHERE id = $1",
        workspace_id,
    )


async def report_of(ctx, workspace_id: str):
    return await ctx.db.fetchrow(
        "SELECT counts, top_contributors, week_start FROM activity_reports WHERE workspace_id = $1",
        workspace_id,
    )


async def run_until_reported(ctx, workspace_id: str):
    """Other workspaces of the session may be waiting for a report too: the job writes at most
    WORKSPACES_PER_RUN per run, so this one is reached within a few runs."""
    for _ in range(50):
        run = await ctx.scheduler.run_now(REPORT_JOB)
        assert run.ran
        report = await report_of(ctx, workspace_id)
        if report:
            return report
    raise AssertionError("no report written")


async def test_weekly_report_from_real_activity(api, ctx, make_user):
    owner, member, admin = await make_user("owner"), await make_user("member"), await make_user("a")
    ws = await create_workspace(api, owner)
    await add_member(api, ws["id"], owner, member, "member")
    await add_member(api, ws["id"], owner, admin, "admin")
    for title in ("One", "Two"):
        made = await api.post(
            "/api/v1/documents/",
            {"workspace_id": ws["id"], "title": title},
            token=member.access_token,
        )
        assert made.status == 201, made.body
    doc_id = made.body["id"]
    renamed = await api.patch(
        f"/api/v1/documents/{doc_id}/", {"title": "Two!"}, token=member.access_token
    )
    assert renamed.status == 200
    board = await api.post(
        "/api/v1/boards/", {"workspace_id": ws["id"], "name": "B"}, token=owner.access_token
    )
    lists = [
        (
            await api.post(
                f"/api/v1/boards/{board.body['id']}/lists/", {"name": n}, token=owner.access_token
            )
        ).body
        for n in ("Todo", "Done")
    ]
    card = await api.post(
        f"/api/v1/lists/{lists[0]['id']}/cards/", {"title": "C"}, token=member.access_token
    )
    moved = await api.post(
        f"/api/v1/cards/{card.body['id']}/move/",
        {"list_id": lists[1]["id"]},
        token=member.access_token,
    )
    assert moved.status == 200, moved.body
    await one_week_back(ctx, ws["id"])

    report = await run_until_reported(ctx, ws["id"])
    counts = report["counts"]
    assert counts["new_documents"] == 2 and counts["cards_moved"] == 1
    assert counts["edits"] >= 1 and counts["events"] >= 8
    top = {c["user_id"]: c for c in report["top_contributors"]}
    # The member made two documents, renamed one, made and moved a card.
    assert top[member.id]["events"] >= 5 and top[member.id]["display_name"] == member.display_name
    assert owner.id in top
    events = [c["events"] for c in report["top_contributors"]]
    assert events == sorted(events, reverse=True)
    assert report["week_start"] == last_full_week(datetime.now(UTC))[0]
    (row,) = await job_runs.recent_runs(ctx.db, REPORT_JOB, 1)
    assert row["outcome"] == "ok" and row["counts"]["reports"] >= 1

    # Idempotent: another run writes no second report for the week.
    await ctx.scheduler.run_now(REPORT_JOB)
    assert (
        await ctx.db.fetchval(
            "SELECT count(*) FROM activity_reports WHERE workspace_id = $1", ws["id"]
        )
        == 1
    )

    url = f"/api/v1/workspaces/{ws['id']}/activity-reports/"
    for user in (owner, admin):
        page = await api.get(url, token=user.access_token)
        assert page.status == 200, page.body
        (item,) = page.body["items"]
        assert item["counts"] == counts and item["workspace_id"] == ws["id"]
    refused = await api.get(url, token=member.access_token)
    assert refused.status == 403
    outsider = await make_user("outsider")
    assert (await api.get(url, token=outsider.access_token)).status == 404
    assert (await api.get(url)).status == 401
    bad = await api.get(f"{url}?limit=0", token=owner.access_token)
    assert bad.status == 400 and "limit" in bad.body["error"]["fields"]


async def test_report_mailed_to_the_admins_who_opted_in(api, ctx, make_user, smtp):
    owner, admin, member = await make_user("owner"), await make_user("admin"), await make_user("m")
    ws = await create_workspace(api, owner)
    await add_member(api, ws["id"], owner, admin, "admin")
    await add_member(api, ws["id"], owner, member, "member")
    url = f"/api/v1/workspaces/{ws['id']}/activity-reports/subscription/"
    assert (await api.get(url, token=admin.access_token)).body == {"email": False}
    for body in ({}, {"email": "yes"}, {"email": True, "x": 1}, [True], {"email": None}):
        assert (await api.put(url, body, token=admin.access_token)).status == 400, body
    refused = await api.put(url, {"email": True}, token=member.access_token)
    assert refused.status == 403
    outsider = await make_user("outsider")
    assert (await api.put(url, {"email": True}, token=outsider.access_token)).status == 404
    assert (await api.get(url, token=admin.access_token)).body == {"email": False}
    opted = await api.put(url, {"email": True}, token=admin.access_token)
    assert (opted.status, opted.body) == (200, {"email": True})
    made = await api.post(
        "/api/v1/documents/",
        {"workspace_id": ws["id"], "title": "<Plan>"},
        token=owner.access_token,
    )
    assert made.status == 201
    await one_week_back(ctx, ws["id"])
    await settle_other_mail(ctx)

    await run_until_reported(ctx, ws["id"])
    queued = await ctx.db.fetch(
        "SELECT payload FROM outbox WHERE kind = $1 AND payload->>'user_id' = ANY($2::text[])",
        REPORT_EMAIL_KIND,
        [owner.id, admin.id, member.id],
    )
    assert [r["payload"]["user_id"] for r in queued] == [admin.id]  # the owner did not opt in

    sent = await ctx.scheduler.run_now(MAIL_JOB)
    assert sent.result >= 1
    (mail_run,) = await job_runs.recent_runs(ctx.db, MAIL_JOB, 1)  # the mail job's history row
    assert mail_run["outcome"] == "ok" and mail_run["counts"]["count"] >= 1
    [message] = [m for m in smtp.inbox.parsed() if m["To"] == admin.email]
    assert ws["name"] in message["Subject"]
    text = text_of(message)
    assert "1 new document" in text and owner.display_name in text
