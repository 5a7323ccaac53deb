"""Notification email: the `send_pending_notifications` job, its messages and one-click unsubscribe.

The inbox (`services/notifications.py`) writes a notification with the recipient's channel at that
moment; when that is an email channel the row waits with `email_state` NULL. This job (one runner
across nodes, every `COLLAB_NOTIFICATION_MAIL_INTERVAL_S`) plans the mail and hands each message to
the outbox, in the transaction that marks its notifications `mailed`; the mail job
(`services/mailer.py`) then sends it over SMTP with its retries and backoff, like every mail. Per
pending notification, oldest first (bounded per run):

* the recipient's *current* choice for the kind decides: no longer an email channel (they
  unsubscribed or switched) → `unsubscribed`, no mail;
* read or archived since → `seen`, no mail (nobody gets mail about what they already saw);
  access to what it is about gone (or the account deactivated) → `no_access`;
* `email_immediate`: one mail per recipient and document (what is about no document: per inbox
  group), holding every pending item of it (four replies → one mail). **Suppression:** at most one
  mail per document (group) per recipient per `COLLAB_NOTIFICATION_MAIL_SUPPRESS_S`: inside the
  window since the last one the items stay pending, and go in one mail when it ends — unless the
  recipient saw them meanwhile;
* `email_digest_hourly` / `_daily`: one digest per recipient once their oldest pending digest
  item is an hour / a day old, its items grouped per inbox group (a thread, or a kind and what it
  is about) and ordered by document — so at most one digest per period.

Every notification mail carries a one-click unsubscribe link (RFC 8058: `List-Unsubscribe` with
the HTTPS link, `List-Unsubscribe-Post: List-Unsubscribe=One-Click`; the same link in the body):
an HMAC-signed token naming the user and the kinds the mail was about, from a key derived from
`COLLAB_JWT_SECRET`; POSTing it switches those kinds to `in_app` (the inbox keeps them, email
stops). The token is computed when the mail is built, so the outbox holds no working link.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from typing import Any
from urllib.parse import urlencode
from uuid import UUID

from core.errors import Gone
from models.db import Database
from models.notifications import (
    ACCESS_GRANTED,
    CARD_ASSIGNED,
    COMMENT_MENTION,
    DOCUMENT_MENTION,
    DOCUMENT_MENTION_NO_ACCESS,
    EMAIL_CHANNELS,
    EMAIL_DIGEST_DAILY,
    EMAIL_DIGEST_HOURLY,
    EMAIL_IMMEDIATE,
    EXPORT_READY,
    IN_APP,
    NOTIFICATION_KINDS,
    THREAD_REPLY,
    THREAD_RESOLVED,
    WORKSPACE_INVITED,
)
from models.repo import notification_mail as repo
from models.repo import notifications as notifications_repo
from models.repo import outbox as outbox_repo
from models.repo import users as users_repo
from server.settings import Settings
from services.mail_messages import MailDeps, absolute_url, compose, render
from services.notification_entities import Notification
from services.notifications import NotificationDraft, default_channel, may_see

NOTIFICATION_MAIL_JOB = "send_pending_notifications"
NOTIFICATION_EMAIL_KIND = "notification_email"
UNSUBSCRIBE_PATH = "/api/v1/notifications/unsubscribe/"
# Pending notifications looked at per run (the oldest first): bounded work per tick.
BATCH = 500
DIGEST_PERIOD = {
    EMAIL_DIGEST_HOURLY: timedelta(hours=1),
    EMAIL_DIGEST_DAILY: timedelta(days=1),
}
EXCERPT_CHARS = 200

# One line per notification in a mail; `{actor}` is the actor's name.
SUMMARIES = {
    COMMENT_MENTION: "{actor} mentioned you in a comment",
    DOCUMENT_MENTION: "{actor} mentioned you in the document",
    DOCUMENT_MENTION_NO_ACCESS: "You mentioned someone who cannot see the document",
    THREAD_REPLY: "{actor} replied",
    THREAD_RESOLVED: "{actor} resolved the thread",
    CARD_ASSIGNED: "{actor} assigned you the card",
    WORKSPACE_INVITED: "{actor} invited you to the workspace",
    ACCESS_GRANTED: "{actor} gave you access",
    EXPORT_READY: "Your export is ready",
}
KIND_LABELS = {
    COMMENT_MENTION: "comment mentions",
    DOCUMENT_MENTION: "document mentions",
    DOCUMENT_MENTION_NO_ACCESS: "unreachable mentions",
    THREAD_REPLY: "thread replies",
    THREAD_RESOLVED: "resolved threads",
    CARD_ASSIGNED: "card assignments",
    WORKSPACE_INVITED: "workspace invitations",
    ACCESS_GRANTED: "access grants",
    EXPORT_READY: "finished exports",
}
# A kind added later without wording here still mails (tests/test_notification_mail.py checks
# that every kind has its own).
GENERIC_SUMMARY = "{actor}: new activity"


@dataclass(frozen=True)
class Pending(Notification):
    """A notification waiting for its mail, with what a mail about it says (`repo.pending`)."""

    recipient_id: UUID
    # The recipient's choice for the kind now; None: the kind's default.
    current_channel: str | None
    recipient_email: str
    recipient_name: str
    recipient_active: bool
    actor_name: str | None
    workspace_name: str
    document_title: str | None
    board_name: str | None
    card_title: str | None


@dataclass(frozen=True)
class MailLine:
    """One notification in a mail."""

    kind: str
    actor_name: str
    summary: str
    excerpt: str


@dataclass(frozen=True)
class MailGroup:
    """A mail's items about one place (an inbox group), with the place's name and link."""

    where: str
    url: str
    items: list[MailLine]


@dataclass(frozen=True)
class UnsubscribeKind:
    kind: str
    label: str
    channel: str


@dataclass(frozen=True)
class UnsubscribeLink:
    """What an unsubscribe link is about: the recipient's address and, per kind, their channel."""

    email: str
    kinds: list[UnsubscribeKind]


# --- the job -----------------------------------------------------------------------------------


@dataclass
class Plan:
    """What one run decided: notifications to settle without mail, and mails to queue."""

    settled: dict[str, list[str]]
    immediate: dict[tuple[str, str], list[Pending]]
    digests: dict[tuple[str, str], list[Pending]]


async def send_pending_notifications(ctx: MailDeps) -> dict[str, int]:
    """The job: settle or mail every due pending notification; counts for the job history.

    Held items get `email_due_at` (when their window or period ends) and are not looked at
    again before it, so however many wait, the rows due now are always in the batch."""
    settings, db = ctx.settings, ctx.db
    plan = await _plan(db, await repo.pending(db, sorted(EMAIL_CHANNELS), BATCH))
    counts: dict[str, int] = defaultdict(int)
    await _settle(db, plan, counts)
    now = datetime.now(UTC)
    window = timedelta(seconds=settings.notification_mail_suppress_s)
    for items in plan.immediate.values():
        first = items[0]
        last = await repo.last_mailed(
            db, str(first.recipient_id), _str(first.document_id), first.group_key
        )
        if last is not None and now - last < window:
            await _hold(db, items, last + window, counts)
            continue
        counts["mails"] += await _queue(db, settings, items, digest_period=None)
    for (recipient, channel), items in plan.digests.items():
        due = min(item.created_at for item in items) + DIGEST_PERIOD[channel]
        if now < due:
            await _hold(db, items, due, counts)
            continue
        # Due: every pending digest item of the recipient goes, held ones included.
        everything = await _plan(db, await repo.pending(db, [channel], BATCH, recipient))
        await _settle(db, everything, counts)
        digest = everything.digests.get((recipient, channel), [])
        if digest:
            counts["mails"] += await _queue(db, settings, digest, digest_period=channel)
    return dict(counts)


async def _settle(db: Database, plan: Plan, counts: dict[str, int]) -> None:
    for state, ids in plan.settled.items():
        counts[state] += len(await repo.settle(db, ids, state))
    plan.settled.clear()


async def _hold(
    db: Database, items: list[Pending], until: datetime, counts: dict[str, int]
) -> None:
    await repo.hold(db, [str(item.id) for item in items], until)
    counts["held"] += len(items)


async def _plan(db: Database, rows: Iterable[Mapping[str, Any]]) -> Plan:
    plan = Plan(defaultdict(list), defaultdict(list), defaultdict(list))
    for row in map(Pending.from_row, rows):
        channel = row.current_channel or default_channel(row.kind)
        if channel not in EMAIL_CHANNELS:
            plan.settled[repo.UNSUBSCRIBED].append(str(row.id))
        elif row.read_at is not None or row.archived_at is not None:
            plan.settled[repo.SEEN].append(str(row.id))
        elif not row.recipient_active or not await may_see(db, _draft(row)):
            plan.settled[repo.NO_ACCESS].append(str(row.id))
        elif channel == EMAIL_IMMEDIATE:
            subject = _str(row.document_id) or row.group_key
            plan.immediate[(str(row.recipient_id), subject)].append(row)
        else:
            plan.digests[(str(row.recipient_id), channel)].append(row)
    return plan


def _draft(row: Pending) -> NotificationDraft:
    """The row as the draft it was written from, for the access check."""

    def uuid_or_none(value: UUID | None) -> UUID | None:
        return None if value is None else UUID(str(value))

    return NotificationDraft(
        recipient_id=UUID(str(row.recipient_id)),
        kind=row.kind,
        actor_id=uuid_or_none(row.actor_id),
        workspace_id=UUID(str(row.workspace_id)),
        document_id=uuid_or_none(row.document_id),
        board_id=uuid_or_none(row.board_id),
        card_id=uuid_or_none(row.card_id),
        thread_id=uuid_or_none(row.thread_id),
    )


def _str(value: Any) -> str | None:
    return None if value is None else str(value)


async def _queue(
    db: Database, settings: Settings, items: list[Pending], digest_period: str | None
) -> int:
    """One mail about `items` into the outbox, in the transaction that marks them mailed; 0 if
    they were settled meanwhile (a read between planning and now wins)."""
    first = items[0]
    groups = _groups(settings, items)
    if digest_period is None:
        template = _immediate_template(items)
        # The template's context, stored in the outbox as JSON: plain dicts from here on.
        context: dict[str, Any] = {"group": asdict(groups[0])} if len(groups) == 1 else {}
        if len(groups) > 1:  # one document, several threads: the digest layout, one mail
            template, context = "notification", {"group": asdict(_merged(groups))}
    else:
        template = "digest"
        period = "hourly" if digest_period == EMAIL_DIGEST_HOURLY else "daily"
        context = {"groups": [asdict(g) for g in groups], "total": len(items), "period": period}
    ids = [str(item.id) for item in items]
    payload = {
        "user_id": str(first.recipient_id),
        "to": first.recipient_email,
        "template": template,
        "context": {"display_name": first.recipient_name, **context},
        "kinds": sorted({item.kind for item in items}),
        "notification_ids": ids,
    }
    try:
        async with db.transaction() as conn:
            marked = await repo.settle(conn, ids, repo.MAILED)
            if len(marked) != len(items):
                raise _Changed  # roll back: the next run plans again
            await outbox_repo.insert(conn, NOTIFICATION_EMAIL_KIND, payload)
    except _Changed:
        return 0
    return 1


class _Changed(Exception):
    """Some of a mail's notifications were settled by someone else between plan and queue."""


def _immediate_template(items: list[Pending]) -> str:
    kinds = {item.kind for item in items}
    if kinds <= {COMMENT_MENTION, DOCUMENT_MENTION}:
        return "mention"
    if kinds == {THREAD_REPLY}:
        return "reply"
    return "notification"


def _groups(settings: Settings, items: list[Pending]) -> list[MailGroup]:
    """Items per inbox group (a thread, or a kind and its target), ordered by document then
    time; each with the place's name and link."""
    by_group: dict[str, list[Pending]] = defaultdict(list)
    for item in sorted(items, key=lambda i: (_str(i.document_id) or "", i.created_at)):
        by_group[item.group_key].append(item)
    return [
        MailGroup(
            where=_where(group[0]),
            url=absolute_url(settings, _app_path(group[0])),
            items=[_line(item) for item in group],
        )
        for group in by_group.values()
    ]


def _merged(groups: list[MailGroup]) -> MailGroup:
    return MailGroup(
        where=groups[0].where,
        url=groups[0].url,
        items=[item for group in groups for item in group.items],
    )


def _where(row: Pending) -> str:
    if row.document_id is not None:
        return f"“{row.document_title or 'Untitled'}”"
    if row.card_id is not None:
        return f"the card “{row.card_title}” on {row.board_name}"
    if row.board_id is not None:
        return f"the board {row.board_name}"
    return f"the workspace {row.workspace_name}"


def _app_path(row: Pending) -> str:
    """Where the web app shows it (`web/`: /w/<workspace>/d/<doc>, /w/<workspace>/b/<board>)."""
    workspace = f"/w/{row.workspace_id}"
    if row.document_id is not None:
        return f"{workspace}/d/{row.document_id}"
    if row.board_id is not None:
        return f"{workspace}/b/{row.board_id}"
    return workspace


def _line(row: Pending) -> MailLine:
    data: Mapping[str, Any] = row.data if isinstance(row.data, dict) else {}
    excerpt = data.get("excerpt")
    text = " ".join(excerpt.split()) if isinstance(excerpt, str) else ""
    if len(text) > EXCERPT_CHARS:
        text = text[: EXCERPT_CHARS - 1] + "…"
    actor = row.actor_name or "Someone"
    return MailLine(
        kind=row.kind,
        actor_name=actor,
        summary=SUMMARIES.get(row.kind, GENERIC_SUMMARY).format(actor=actor),
        excerpt=text,
    )


# --- the message (built by the mail job when it sends) -----------------------------------------


async def notification_mail(
    db: Database, settings: Settings, payload: dict[str, Any]
) -> EmailMessage | None:
    """The planned mail with its unsubscribe link and headers; None if the account is gone or
    deactivated since."""
    user = await users_repo.get_user(db, payload["user_id"])
    if user is None or not user["is_active"]:
        return None
    kinds = payload["kinds"]
    url = unsubscribe_url(settings, payload["user_id"], kinds)
    label = ", ".join(KIND_LABELS.get(kind, kind) for kind in kinds) + " emails"
    context = {**payload["context"], "unsubscribe_url": url, "unsubscribe_label": label}
    headers = {
        "List-Unsubscribe": f"<{url}>",
        "List-Unsubscribe-Post": "List-Unsubscribe=One-Click",
        # Automated mail: no vacation auto-replies back to us (RFC 3834).
        "Auto-Submitted": "auto-generated",
    }
    return compose(settings, user["email"], render(payload["template"], context), headers)


# --- unsubscribe --------------------------------------------------------------------------------


def _unsubscribe_key(settings: Settings) -> bytes:
    return hmac.new(settings.jwt_secret.encode(), b"unsubscribe", hashlib.sha256).digest()


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def unsubscribe_token(settings: Settings, user_id: str, kinds: Iterable[str]) -> str:
    body = _b64(json.dumps({"u": user_id, "k": sorted(kinds)}, separators=(",", ":")).encode())
    signature = _b64(hmac.new(_unsubscribe_key(settings), body.encode(), hashlib.sha256).digest())
    return f"{body}.{signature}"


def unsubscribe_url(settings: Settings, user_id: str, kinds: Iterable[str]) -> str:
    token = unsubscribe_token(settings, user_id, kinds)
    return absolute_url(settings, f"{UNSUBSCRIBE_PATH}?{urlencode({'token': token})}")


def _invalid() -> Gone:
    return Gone("this unsubscribe link is not valid", code="link_invalid")


def read_unsubscribe_token(settings: Settings, token: str) -> tuple[str, list[str]]:
    """(user id, kinds) of a token this server signed; 410 `link_invalid` otherwise."""
    body, _, signature = token.partition(".")
    expected = _b64(hmac.new(_unsubscribe_key(settings), body.encode(), hashlib.sha256).digest())
    if not hmac.compare_digest(signature, expected):
        raise _invalid()
    try:
        claims = json.loads(_unb64(body))
        user_id, kinds = str(UUID(claims["u"])), list(claims["k"])
    except (ValueError, KeyError, TypeError, binascii.Error) as err:
        raise _invalid() from err
    if not kinds or not set(kinds) <= set(NOTIFICATION_KINDS):
        raise _invalid()
    return user_id, kinds


async def describe_unsubscribe(db: Database, settings: Settings, token: str) -> UnsubscribeLink:
    """What the link would do (GET: no change, mail scanners follow links)."""
    user_id, kinds = read_unsubscribe_token(settings, token)
    user = await users_repo.get_user(db, user_id)
    if user is None:
        raise _invalid()
    chosen = await notifications_repo.preferences(db, user_id)
    return UnsubscribeLink(
        email=user["email"],
        kinds=[
            UnsubscribeKind(
                kind=kind,
                label=KIND_LABELS.get(kind, kind),
                channel=chosen.get(kind) or default_channel(kind),
            )
            for kind in kinds
        ],
    )


async def unsubscribe(db: Database, settings: Settings, token: str) -> UnsubscribeLink:
    """Stop email for the token's kinds: each one on an email channel becomes `in_app` (the
    inbox keeps them); a kind already `in_app` or `off` stays as it is. Idempotent."""
    user_id, kinds = read_unsubscribe_token(settings, token)
    if await users_repo.get_user(db, user_id) is None:
        raise _invalid()
    chosen = await notifications_repo.preferences(db, user_id)
    for kind in kinds:
        if (chosen.get(kind) or default_channel(kind)) in EMAIL_CHANNELS:
            await notifications_repo.set_preference(db, user_id, kind, IN_APP)
    return await describe_unsubscribe(db, settings, token)
