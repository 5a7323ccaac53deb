"""The mailer: invitation mail leaves the outbox over real SMTP (an aiosmtpd server in the test),
with retries and backoff on failures, and sent / failed recorded on the outbox row."""

from __future__ import annotations

import dataclasses
import uuid
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime

import pytest

from server.settings import ConfigError, Settings
from services.mailer import MAIL_JOB
from tests.mail_support import PUBLIC_URL, link_in, parsed, settle_other_mail, smtp_settings
from tests.ws_helpers import invite, workspace_with


@pytest.fixture
def settings(settings: Settings, smtp) -> Settings:
    return smtp_settings(settings, smtp)


async def invited(api, ctx) -> tuple[str, dict]:
    await settle_other_mail(ctx)
    workspace, users = await workspace_with(api, ctx)
    to = f"invitee-{uuid.uuid4().hex[:10]}@example.com"
    created = await invite(api, workspace["id"], users["owner"], to, "member")
    assert created.status == 201, created.body
    return to, {**created.body, "workspace_name": workspace["name"]}


async def outbox_row(ctx, invitation_id: str) -> dict:
    row = await ctx.db.fetchrow(
        "SELECT *, available_at - now() AS wait FROM outbox"
        " WHERE kind = 'invitation_email' AND payload->>'invitation_id' = $1",
        invitation_id,
    )
    return dict(row)


async def make_due(ctx, invitation_id: str) -> None:
    await ctx.db.execute(
        "UPDATE outbox SET available_at = now() - interval '1 second'"
        " WHERE kind = 'invitation_email' AND payload->>'invitation_id' = $1",
        invitation_id,
    )


async def test_invitation_is_sent_over_smtp_with_the_web_app_link(api, ctx, smtp):
    to, created = await invited(api, ctx)
    before = datetime.now(UTC).replace(microsecond=0)
    run = await ctx.scheduler.run_now(MAIL_JOB)
    assert run.result == 1
    [envelope] = smtp.inbox.messages
    assert envelope.rcpt_tos == [to]
    assert envelope.mail_from == "noreply@collab.example"
    message = parsed(envelope)
    assert message["To"] == to
    assert message["Subject"] == f"Owner invited you to {created['workspace_name']} on Collab"
    # Date is required by RFC 5322 (`collab mailbox list` showed an empty date column).
    assert before <= parsedate_to_datetime(message["Date"]) <= datetime.now(UTC)
    # The link opens the web app's invitation page (a browser's GET), not the POST-only API
    # route (which answered 405 JSON to a click).
    path = link_in(message, "/invite/")
    assert path == f"/invite/{created['token']}"
    page = await api.get(path)
    assert page.status == 200
    assert page.headers["Content-Type"].startswith("text/html")
    assert page.headers["Referrer-Policy"] == "no-referrer"  # the token stays off other sites
    assert '<div id="root">' in page.body
    row = await outbox_row(ctx, created["id"])
    assert row["processed_at"] is not None and row["failed_at"] is None
    assert (row["attempts"], row["last_error"]) == (1, None)
    assert created["token"] not in str(row["payload"])  # the link is dropped once sent
    # Sent once: the next run finds nothing.
    assert (await ctx.scheduler.run_now(MAIL_JOB)).result == 0
    assert len(smtp.inbox.messages) == 1


async def test_server_down_retries_with_backoff_then_delivers(api, ctx, smtp):
    smtp.stop()
    to, created = await invited(api, ctx)
    assert (await ctx.scheduler.run_now(MAIL_JOB)).result == 0
    row = await outbox_row(ctx, created["id"])
    assert row["processed_at"] is None and row["failed_at"] is None
    assert row["attempts"] == 1 and row["last_error"]
    # First retry after mail_retry_base_s (60 s ± 10 %), not at the next run.
    assert 50 < row["wait"].total_seconds() <= 66
    assert (await ctx.scheduler.run_now(MAIL_JOB)).result == 0
    assert (await outbox_row(ctx, created["id"]))["attempts"] == 1

    await make_due(ctx, created["id"])
    assert (await ctx.scheduler.run_now(MAIL_JOB)).result == 0
    row = await outbox_row(ctx, created["id"])
    assert row["attempts"] == 2
    assert 100 < row["wait"].total_seconds() <= 132  # doubled

    smtp.start()
    await make_due(ctx, created["id"])
    assert (await ctx.scheduler.run_now(MAIL_JOB)).result == 1
    [envelope] = smtp.inbox.messages
    assert envelope.rcpt_tos == [to]
    row = await outbox_row(ctx, created["id"])
    assert row["processed_at"] is not None and row["failed_at"] is None
    assert row["attempts"] == 3


async def test_gives_up_after_max_attempts(api, ctx, smtp):
    smtp.stop()
    _, created = await invited(api, ctx)
    for attempt in range(1, 4):
        await make_due(ctx, created["id"])
        await ctx.scheduler.run_now(MAIL_JOB)
        assert (await outbox_row(ctx, created["id"]))["attempts"] == attempt
    row = await outbox_row(ctx, created["id"])
    assert row["failed_at"] is not None and row["processed_at"] is not None
    assert row["last_error"]
    smtp.start()
    await make_due(ctx, created["id"])
    assert (await ctx.scheduler.run_now(MAIL_JOB)).result == 0
    assert smtp.inbox.messages == []


async def test_permanent_refusal_fails_at_once(api, ctx, smtp):
    smtp.inbox.refuse_recipients = True
    _, created = await invited(api, ctx)
    assert (await ctx.scheduler.run_now(MAIL_JOB)).result == 0
    row = await outbox_row(ctx, created["id"])
    assert row["failed_at"] is not None and row["attempts"] == 1
    assert "550" in row["last_error"]


async def test_revoked_invitation_is_not_mailed(api, ctx, smtp):
    await settle_other_mail(ctx)
    workspace, users = await workspace_with(api, ctx)
    created = await invite(api, workspace["id"], users["owner"], "late@example.com", "member")
    revoked = await api.delete(
        f"/api/v1/workspaces/{workspace['id']}/invitations/{created.body['id']}/",
        token=users["owner"].access_token,
    )
    assert revoked.status == 204, revoked.body
    assert (await ctx.scheduler.run_now(MAIL_JOB)).result == 0
    assert smtp.inbox.messages == []
    row = await outbox_row(ctx, created.body["id"])
    assert row["processed_at"] is not None and row["failed_at"] is None


async def test_off_backend_leaves_mail_in_the_outbox(api, ctx, smtp):
    ctx.settings = dataclasses.replace(ctx.settings, mail_backend="off")
    _, created = await invited(api, ctx)
    assert (await ctx.scheduler.run_now(MAIL_JOB)).result == 0
    row = await outbox_row(ctx, created["id"])
    assert row["processed_at"] is None and row["attempts"] == 0
    assert smtp.inbox.messages == []


async def test_console_backend_prints_instead_of_sending(api, ctx, smtp, capsys):
    ctx.settings = dataclasses.replace(ctx.settings, mail_backend="console")
    to, created = await invited(api, ctx)
    assert (await ctx.scheduler.run_now(MAIL_JOB)).result == 1
    printed = capsys.readouterr().out
    assert f"To: {to}" in printed
    assert f"{PUBLIC_URL}/invite/{created['token']}" in printed
    assert smtp.inbox.messages == []
    assert (await outbox_row(ctx, created["id"]))["processed_at"] is not None


def test_mail_settings_are_validated():
    with pytest.raises(ConfigError, match="COLLAB_MAIL_BACKEND"):
        Settings.from_env({"COLLAB_MAIL_BACKEND": "carrier-pigeon"})
    with pytest.raises(ConfigError, match="COLLAB_SMTP_TLS"):
        Settings.from_env({"COLLAB_SMTP_TLS": "ssl3"})
    parsed_settings = Settings.from_env(
        {"COLLAB_MAIL_BACKEND": "smtp", "COLLAB_SMTP_PORT": "587", "COLLAB_SMTP_TLS": "starttls"}
    )
    assert (parsed_settings.mail_backend, parsed_settings.smtp_port) == ("smtp", 587)
    assert Settings.from_env({}).mail_backend == "off"
