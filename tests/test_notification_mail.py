"""Notification email: the `send_pending_notifications` job plans mail from the preferences, the
mail job sends it over real SMTP (aiosmtpd), and the one-click unsubscribe link in every mail
works — immediate mail, digests (5 events → 1 email), suppression per document, nothing for what
was seen, what access was lost to or what was unsubscribed from; retries through the mailer."""

from __future__ import annotations

import dataclasses
import uuid
from urllib.parse import urlsplit
from uuid import UUID

import pytest

from models.notifications import (
    COMMENT_MENTION,
    DOCUMENT_MENTION,
    NOTIFICATION_KINDS,
    THREAD_REPLY,
)
from server.settings import Settings
from services import notification_mail
from services.mailer import MAIL_JOB
from services.notification_mail import (
    KIND_LABELS,
    NOTIFICATION_MAIL_JOB,
    SUMMARIES,
    read_unsubscribe_token,
)
from tests.comments_support import body as comment_body
from tests.comments_support import comment_world
from tests.comments_support import mention as comment_mention
from tests.mail_support import PUBLIC_URL, html_of, settle_other_mail, smtp_settings, text_of
from tests.notification_support import draft, notify
from tests.ws_helpers import insert_document, workspace_with, ws_path

PREFERENCES = "/api/v1/notifications/preferences/"
UNSUBSCRIBE = "/api/v1/notifications/unsubscribe/"


@pytest.fixture
def settings(settings: Settings, smtp) -> Settings:
    return dataclasses.replace(
        smtp_settings(settings, smtp), jwt_secret="x" * 48, notification_mail_suppress_s=3600
    )


async def plan(ctx) -> dict:
    run = await ctx.scheduler.run_now(NOTIFICATION_MAIL_JOB)
    assert run.ran
    return run.result


async def send(ctx) -> int:
    return (await ctx.scheduler.run_now(MAIL_JOB)).result


async def setting(api, user, kind: str, channel: str) -> None:
    answer = await api.put(f"{PREFERENCES}{kind}/", {"channel": channel}, token=user.access_token)
    assert answer.status == 200, answer.body


async def world(api, ctx, title: str = "Roadmap"):
    await settle_other_mail(ctx)
    workspace, users = await workspace_with(api, ctx, "member")
    doc = await insert_document(ctx, workspace["id"], title=title)
    return workspace, users["owner"], users["member"], doc


async def mention(ctx, workspace, owner, member, doc: str, excerpt: str = "see this") -> UUID:
    made = await notify(
        ctx,
        draft(member, owner, workspace["id"], document_id=UUID(doc), data={"excerpt": excerpt}),
    )
    assert made is not None
    return made


async def time_passes(ctx, user, minutes: int) -> None:
    """Move the user's notifications `minutes` into the past (creation, last mail, hold)."""
    await ctx.db.execute(
        "UPDATE notifications SET created_at = created_at - make_interval(mins => $2),"
        " emailed_at = emailed_at - make_interval(mins => $2),"
        " email_due_at = email_due_at - make_interval(mins => $2) WHERE recipient_id = $1",
        user.id,
        minutes,
    )


async def email_state(ctx, notification_id: UUID) -> tuple[str | None, bool]:
    row = await ctx.db.fetchrow(
        "SELECT email_state, emailed_at FROM notifications WHERE id = $1", notification_id
    )
    return row["email_state"], row["emailed_at"] is not None


def unsubscribe_path(message) -> str:
    header = message["List-Unsubscribe"]
    assert header.startswith(f"<{PUBLIC_URL}{UNSUBSCRIBE}?token=") and header.endswith(">")
    parts = urlsplit(header[1:-1])
    return f"{parts.path}?{parts.query}"


async def test_a_mention_is_mailed_at_once_with_an_unsubscribe_link(api, ctx, smtp):
    workspace, owner, member, doc = await world(api, ctx)
    made = await mention(ctx, workspace, owner, member, doc, excerpt="can you  review\nthis?")
    assert await plan(ctx) == {"mails": 1}
    assert await email_state(ctx, made) == ("mailed", True)
    assert smtp.inbox.messages == []  # planning queues; only the mail job sends
    assert await send(ctx) == 1
    [message] = smtp.inbox.parsed()
    assert smtp.inbox.messages[0].rcpt_tos == [member.email]
    assert message["Subject"] == "Owner mentioned you in “Roadmap”"
    text, html = text_of(message), html_of(message)
    assert "“can you review this?”" in text
    link = f"{PUBLIC_URL}/w/{workspace['id']}/d/{doc}"
    assert link in text and f'href="{link}"' in html
    assert message["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    path = unsubscribe_path(message)
    assert f"{PUBLIC_URL}{path}" in text
    assert "Unsubscribe from document mentions emails" in html
    # The job's history row has its counts; a second run finds nothing.
    runs = await ctx.db.fetch(
        "SELECT outcome, counts FROM job_runs WHERE job = $1 AND node_id = $2 ORDER BY started_at",
        NOTIFICATION_MAIL_JOB,
        ctx.settings.node_id,
    )
    assert [r["outcome"] for r in runs] == ["ok"] and '"mails": 1' in runs[0]["counts"]
    assert await plan(ctx) == {}
    assert await send(ctx) == 0


@pytest.mark.parametrize(("channel", "period_minutes"), [("hourly", 60), ("daily", 24 * 60)])
async def test_digest_groups_five_events_into_one_email(api, ctx, smtp, channel, period_minutes):
    workspace, owner, member, doc = await world(api, ctx, title="Spec")
    await setting(api, member, THREAD_REPLY, f"email_digest_{channel}")
    threads = (uuid.uuid4(), uuid.uuid4())
    made = []
    for n in range(5):
        made.append(
            await notify(
                ctx,
                draft(
                    member,
                    owner,
                    workspace["id"],
                    kind=THREAD_REPLY,
                    document_id=UUID(doc),
                    thread_id=threads[n % 2],
                    data={"excerpt": f"reply {n}"},
                ),
            )
        )
    # Not an hour old yet: held.
    assert await plan(ctx) == {"held": 5}
    assert await plan(ctx) == {}  # held until the period is over: not even looked at
    await time_passes(ctx, member, period_minutes - 2)
    assert await plan(ctx) == {}
    await time_passes(ctx, member, 3)
    assert await plan(ctx) == {"mails": 1}
    assert await send(ctx) == 1
    [message] = smtp.inbox.parsed()
    assert message["Subject"] == f"Your Collab {channel} digest: 5 updates"
    text = text_of(message)
    assert text.count("## “Spec”") == 2  # one section per thread
    for n in range(5):
        assert f"Owner replied: “reply {n}”" in text
    assert "Unsubscribe from thread replies emails" in text
    assert [await email_state(ctx, m) for m in made] == [("mailed", True)] * 5


async def test_at_most_one_mail_per_document_per_window_and_none_for_what_was_seen(api, ctx, smtp):
    workspace, owner, member, doc = await world(api, ctx)
    other_doc = await insert_document(ctx, workspace["id"], title="Other")
    first = await mention(ctx, workspace, owner, member, doc, excerpt="one")
    assert await plan(ctx) == {"mails": 1}
    second = await mention(ctx, workspace, owner, member, doc, excerpt="two")
    elsewhere = await mention(ctx, workspace, owner, member, other_doc, excerpt="else")
    # Same document inside the window: held; another document: mailed.
    assert await plan(ctx) == {"held": 1, "mails": 1}
    assert await email_state(ctx, second) == (None, False)
    assert await email_state(ctx, elsewhere) == ("mailed", True)
    third = await mention(ctx, workspace, owner, member, doc, excerpt="three")
    # The window ends: the held items go out together in one mail.
    assert await plan(ctx) == {"held": 1}  # the third joins the held second
    await time_passes(ctx, member, 61)
    assert await plan(ctx) == {"mails": 1}
    assert await send(ctx) == 3
    [later] = [m for m in smtp.inbox.parsed() if "“two”" in text_of(m)]
    assert "“three”" in text_of(later) and "“one”" not in text_of(later)
    # Seen before its mail: no mail, ever.
    fourth = await mention(ctx, workspace, owner, member, other_doc, excerpt="four")
    read = await api.post(f"/api/v1/notifications/{fourth}/read/", token=member.access_token)
    assert read.status == 200, read.body
    assert await plan(ctx) == {"seen": 1}
    assert await email_state(ctx, fourth) == ("seen", False)
    assert await send(ctx) == 0
    assert await email_state(ctx, third) == ("mailed", True)  # with the second
    assert first


async def test_lost_access_means_no_mail(api, ctx, smtp):
    workspace, owner, member, doc = await world(api, ctx)
    made = await mention(ctx, workspace, owner, member, doc)
    removed = await api.delete(
        ws_path(workspace["id"], f"members/{member.id}/"), token=owner.access_token
    )
    assert removed.status == 204, removed.body
    assert await plan(ctx) == {"no_access": 1}
    assert await email_state(ctx, made) == ("no_access", False)


async def test_one_click_unsubscribe(api, ctx, smtp):
    workspace, owner, member, doc = await world(api, ctx)
    await mention(ctx, workspace, owner, member, doc)
    assert await plan(ctx) == {"mails": 1}
    assert await send(ctx) == 1
    path = unsubscribe_path(smtp.inbox.parsed()[0])
    pending = await mention(
        ctx, workspace, owner, member, await insert_document(ctx, workspace["id"])
    )

    # Following the link (or a scanner prefetching it) changes nothing: a confirmation page.
    page = await api.get(path, headers={"Accept": "text/html"})
    assert page.status == 200
    assert page.headers["Content-Type"].startswith("text/html")
    assert member.email in page.body and "document mentions" in page.body
    assert '<form method="post"' in page.body
    prefs = await api.get(PREFERENCES, token=member.access_token)
    channels = {p["kind"]: p["channel"] for p in prefs.body["preferences"]}
    assert channels[DOCUMENT_MENTION] == "email_immediate"

    # The mail client's one-click POST (RFC 8058).
    done = await api.post(
        path,
        raw=b"List-Unsubscribe=One-Click",
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )
    assert done.status == 200, done.body
    assert done.body == {
        "email": member.email,
        "kinds": [{"kind": DOCUMENT_MENTION, "label": "document mentions", "channel": "in_app"}],
    }
    prefs = await api.get(PREFERENCES, token=member.access_token)
    channels = {p["kind"]: p["channel"] for p in prefs.body["preferences"]}
    assert channels[DOCUMENT_MENTION] == "in_app"
    assert channels[COMMENT_MENTION] == "email_immediate"  # only the kinds of that mail
    # What was still waiting for its mail is not sent; it stays in the inbox.
    assert await plan(ctx) == {"unsubscribed": 1}
    assert await email_state(ctx, pending) == ("unsubscribed", False)
    inbox = await api.get("/api/v1/notifications/", token=member.access_token)
    assert str(pending) in [item["latest"]["id"] for item in inbox.body["items"]]
    # Again: idempotent. From the page's button (a browser): an HTML answer.
    again = await api.post(
        path,
        raw=b"List-Unsubscribe=One-Click",
        headers={"Content-Type": "application/x-www-form-urlencoded", "Accept": "text/html"},
    )
    assert again.status == 200 and "Done: no more emails" in again.body
    assert (await api.post(path, {})).status == 200  # an API client's empty JSON body


async def test_bad_unsubscribe_links_change_nothing(api, ctx, smtp):
    workspace, owner, member, doc = await world(api, ctx)
    await mention(ctx, workspace, owner, member, doc)
    await plan(ctx)
    await send(ctx)
    path = unsubscribe_path(smtp.inbox.parsed()[0])
    token = path.split("token=", 1)[1]
    body, signature = token.split(".")
    forged = f"{UNSUBSCRIBE}?token={body}.{'A' * len(signature)}"
    other_secret = dataclasses.replace(ctx.settings, jwt_secret="y" * 48)
    assert read_unsubscribe_token(ctx.settings, token)[0] == member.id
    with pytest.raises(Exception, match="not valid"):
        read_unsubscribe_token(other_secret, token)
    form = {"Content-Type": "application/x-www-form-urlencoded"}
    for method, url, raw, headers, status in [
        ("GET", forged, None, {}, 410),
        ("POST", forged, b"List-Unsubscribe=One-Click", form, 410),
        ("GET", f"{UNSUBSCRIBE}?token=nodot", None, {}, 410),
        ("GET", f"{UNSUBSCRIBE}?token=%00", None, {}, 400),
        ("GET", UNSUBSCRIBE, None, {}, 400),
        ("GET", f"{UNSUBSCRIBE}?token=" + "a" * 1025, None, {}, 400),
        ("POST", path, b"List-Unsubscribe=Maybe", form, 400),
        ("POST", path, b'{"kind": "document.mention"}', {}, 400),
        ("POST", path, b"[]", {}, 400),
        ("POST", path + "&extra=1", b"", {}, 400),
    ]:
        answer = await api.request(method, url, raw=raw, headers=headers)
        assert answer.status == status, (method, url, raw, answer.body)
        assert answer.body["error"]["code"] in ("link_invalid", "validation_error")
    prefs = await api.get(PREFERENCES, token=member.access_token)
    channels = {p["kind"]: p["channel"] for p in prefs.body["preferences"]}
    assert channels[DOCUMENT_MENTION] == "email_immediate"


async def test_a_failed_send_is_retried_by_the_mailer(api, ctx, smtp):
    workspace, owner, member, doc = await world(api, ctx)
    await mention(ctx, workspace, owner, member, doc)
    smtp.stop()
    assert await plan(ctx) == {"mails": 1}
    assert await send(ctx) == 0
    row = await ctx.db.fetchrow(
        "SELECT id, attempts, last_error, processed_at FROM outbox"
        " WHERE kind = 'notification_email' AND payload->>'user_id' = $1",
        member.id,
    )
    assert (row["attempts"], row["processed_at"]) == (1, None) and row["last_error"]
    smtp.start()
    await ctx.db.execute("UPDATE outbox SET available_at = now() WHERE id = $1", row["id"])
    assert await send(ctx) == 1
    assert [m.rcpt_tos for m in smtp.inbox.messages] == [[member.email]]


def test_every_kind_has_its_own_wording():
    assert set(SUMMARIES) == set(KIND_LABELS) == set(NOTIFICATION_KINDS)


async def test_a_comment_mention_reaches_the_inbox_and_one_email(api, ctx, smtp):
    """The acceptance path: a mention written through the comments API is in the mentioned
    user's inbox and, by their default preference, in exactly one email."""
    await settle_other_mail(ctx)
    w = await comment_world(api, ctx)
    created = await api.post(
        w.doc_threads(),
        {"body": comment_body("Could you check ", comment_mention(w.users["viewer"].id), "?")},
        token=w.token("editor"),
    )
    assert created.status == 201, created.body
    inbox = await api.get("/api/v1/notifications/", token=w.token("viewer"))
    [item] = inbox.body["items"]
    assert item["latest"]["kind"] == COMMENT_MENTION
    assert await plan(ctx) == {"mails": 1}
    assert await send(ctx) == 1
    [message] = smtp.inbox.parsed()
    assert smtp.inbox.messages[0].rcpt_tos == [w.users["viewer"].email]
    assert message["Subject"] == "Editor mentioned you in “Spec”"
    assert "“Could you check @Viewer?”" in text_of(message)
    assert f"{PUBLIC_URL}/w/{w.workspace_id}/d/{w.doc_id}" in text_of(message)
    assert message["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    # A reply in the thread mentions nobody new: the viewer (not a participant) gets no mail.
    replied = await api.post(
        f"/api/v1/threads/{created.body['id']}/comments/",
        {"body": comment_body("done")},
        token=w.token("owner"),
    )
    assert replied.status == 201, replied.body
    assert await plan(ctx) == {}
    assert await send(ctx) == 0


async def test_held_mail_never_crowds_out_what_is_due(api, ctx, smtp, monkeypatch):
    monkeypatch.setattr(notification_mail, "BATCH", 2)
    workspace, owner, member, doc = await world(api, ctx)
    await mention(ctx, workspace, owner, member, doc)
    assert await plan(ctx) == {"mails": 1}
    for n in range(3):  # more than a batch of held mail about the same document
        await mention(ctx, workspace, owner, member, doc, excerpt=f"held {n}")
        assert await plan(ctx) == {"held": 1}
    other = await mention(
        ctx, workspace, owner, member, await insert_document(ctx, workspace["id"])
    )
    assert await plan(ctx) == {"mails": 1}
    assert await email_state(ctx, other) == ("mailed", True)
