"""Sends the mail the outbox holds: a periodic job, never the request path.

A change that should send mail writes an outbox row in its own transaction (an invitation:
`services/workspaces.py`; a reset or verification request: `services/account_tokens.py`; a planned
notification mail: `services/notification_mail.py`), so no mail is sent for a rolled-back change and none is lost while the
SMTP server is down. This job leases due rows (`models/repo/outbox.py` `lease_pending`: no
transaction stays open during a send; a crashed sender's rows come back when the lease ends),
builds each message (its kind's `build`: templates in `services/mail_messages.py`; it may also
decide there is nothing to send, e.g. a revoked invitation) and hands it to the backend of
`settings.mail_backend`:

* `off`: nothing runs; mail waits in the outbox.
* `console`: the message is written to standard output, marked sent (`collab dev` on external
  services; otherwise `collab dev` sends over SMTP to its own mail catcher).
* `smtp`: sent with aiosmtplib. Sent → `processed_at`. A transient failure (connection refused,
  timeout, 4xx) → retried after `mail_retry_base_s` doubling per attempt (capped, jittered);
  after `mail_max_attempts`, or at once on a permanent 5xx refusal → `failed_at` + `last_error`.

Delivery is at least once: a crash between the server's "250 OK" and recording it sends again.
Payload fields that carry a secret (an invitation's accept path) are removed from the row once it
is sent or failed: the outbox does not keep working links for longer than it needs them.
"""

from __future__ import annotations

import random
import sys
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from email.message import EmailMessage
from typing import Any

import structlog

from models.db import Database
from models.repo import outbox as outbox_repo
from models.repo import workspaces as workspaces_repo
from server.settings import Settings
from services import account_tokens, activity_reports, notification_mail
from services.auth import PASSWORD_RESET_EMAIL_KIND, VERIFICATION_EMAIL_KIND
from services.mail_messages import MailDeps, invitation_message
from services.workspaces import INVITATION_EMAIL_KIND

log = structlog.get_logger(__name__)

# The seed's name for this job (it sends account mail too, not only invitations).
MAIL_JOB = "send_workspace_invitation_email"
# Messages per kind per run, and how long a leased row is hidden from other senders: longer than
# the batch can take (each send is bounded by smtp_timeout_s).
MAIL_BATCH = 20
MAX_RETRY_DELAY_S = 3600.0


MessageBuilder = Callable[[Database, Settings, dict[str, Any]], Awaitable[EmailMessage | None]]


@dataclass(frozen=True)
class MailKind:
    """One kind of outbox row that becomes an email. `build` returns None when there is nothing
    to send any more (the row is then marked processed, not sent); `secret_keys` are dropped from
    the payload once the row is done."""

    outbox_kind: str
    build: MessageBuilder
    secret_keys: tuple[str, ...] = ()


async def _invitation(
    db: Database, settings: Settings, payload: dict[str, Any]
) -> EmailMessage | None:
    """Skipped when the invitation was revoked (or used) before its mail went out."""
    if not await workspaces_repo.invitation_is_pending(db, payload["invitation_id"]):
        return None
    return invitation_message(payload, settings)


MAIL_KINDS = (
    MailKind(INVITATION_EMAIL_KIND, _invitation, secret_keys=("invite_path", "accept_path")),
    MailKind(PASSWORD_RESET_EMAIL_KIND, account_tokens.password_reset_mail),
    MailKind(VERIFICATION_EMAIL_KIND, account_tokens.verification_mail),
    MailKind(notification_mail.NOTIFICATION_EMAIL_KIND, notification_mail.notification_mail),
    MailKind(activity_reports.REPORT_EMAIL_KIND, activity_reports.activity_report_mail),
)


class PermanentMailError(Exception):
    """The server refused the message for good (5xx): retrying cannot help."""


def retry_delay_s(settings: Settings, attempts_so_far: int) -> float:
    """Exponential backoff with ±10 % jitter, so failed messages do not retry in lockstep."""
    base = min(settings.mail_retry_base_s * 2**attempts_so_far, MAX_RETRY_DELAY_S)
    return base * random.uniform(0.9, 1.1)


async def send_smtp(settings: Settings, message: EmailMessage) -> None:
    """One message to the configured SMTP server; raises `PermanentMailError` on a 5xx."""
    import aiosmtplib  # only the smtp backend needs it (~2.4 MB a node need not load)

    try:
        await aiosmtplib.send(
            message,
            hostname=settings.smtp_host,
            port=settings.smtp_port,
            username=settings.smtp_username or None,
            password=settings.smtp_password or None,
            use_tls=settings.smtp_tls == "tls",
            start_tls=settings.smtp_tls == "starttls",
            timeout=settings.smtp_timeout_s,
        )
    except aiosmtplib.SMTPRecipientsRefused as err:
        if all(refused.code >= 500 for refused in err.recipients):
            raise PermanentMailError(str(err)) from err
        raise
    except aiosmtplib.SMTPResponseException as err:
        if err.code >= 500:
            raise PermanentMailError(f"{err.code} {err.message}") from err
        raise


def _transient_errors() -> tuple[type[BaseException], ...]:
    """What a send may raise that a retry can cure. Evaluated only when a send raised, so the
    print backend never imports aiosmtplib (an smtp send already has)."""
    import aiosmtplib

    return (aiosmtplib.SMTPException, OSError, TimeoutError)


def print_message(message: EmailMessage) -> None:
    """The console backend: headers and the text part on standard output, for a developer."""
    text_part = message.get_body(("plain",))
    text = text_part.get_content() if isinstance(text_part, EmailMessage) else ""
    headers = "".join(f"{name}: {message[name]}\n" for name in ("From", "To", "Subject"))
    sys.stdout.write(f"----- mail (console backend) -----\n{headers}\n{text}-----\n")
    sys.stdout.flush()


async def send_pending(ctx: MailDeps) -> int:
    """The mail job: send the due messages of every kind; returns how many were sent."""
    settings = ctx.settings
    if settings.mail_backend == "off":
        return 0
    lease_s = MAIL_BATCH * settings.smtp_timeout_s + 60
    sent = 0
    for kind in MAIL_KINDS:
        rows = await outbox_repo.lease_pending(ctx.db, kind.outbox_kind, MAIL_BATCH, lease_s)
        for row in rows:
            sent += await _deliver(ctx, kind, str(row["id"]), row["payload"], row["attempts"])
    return sent


async def _deliver(
    ctx: MailDeps, kind: MailKind, row_id: str, payload: dict[str, Any], attempts: int
) -> int:
    settings, db = ctx.settings, ctx.db
    message = await kind.build(db, settings, payload)
    if message is None:
        await outbox_repo.mark_processed(db, [row_id])
        log.info("mail.skipped", kind=kind.outbox_kind, outbox_id=row_id)
        return 0
    try:
        await deliver(settings, message)
    except PermanentMailError as err:
        await outbox_repo.mark_failed(db, row_id, str(err), kind.secret_keys)
        log.error("mail.failed", kind=kind.outbox_kind, outbox_id=row_id, error=str(err))
        return 0
    except _transient_errors() as err:
        if attempts + 1 >= settings.mail_max_attempts:
            await outbox_repo.mark_failed(db, row_id, repr(err), kind.secret_keys)
            log.error("mail.failed", kind=kind.outbox_kind, outbox_id=row_id, error=repr(err))
            return 0
        delay = retry_delay_s(settings, attempts)
        await outbox_repo.retry_later(db, row_id, repr(err), delay)
        log.warning(
            "mail.retry",
            kind=kind.outbox_kind,
            outbox_id=row_id,
            delay_s=round(delay, 1),
            error=repr(err),
        )
        return 0
    await outbox_repo.mark_sent(db, row_id, kind.secret_keys)
    log.info("mail.sent", kind=kind.outbox_kind, outbox_id=row_id)
    return 1


async def deliver(settings: Settings, message: EmailMessage) -> None:
    """Hand one message to the configured backend (`console` or `smtp`)."""
    if settings.mail_backend == "console":
        print_message(message)
    else:
        await send_smtp(settings, message)
