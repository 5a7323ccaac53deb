"""A real SMTP server for the mail tests (aiosmtpd on a free port) and helpers to read what it
received: every test that sends mail asserts on messages that crossed SMTP, never on a mock."""

from __future__ import annotations

import dataclasses
import email
import email.policy
import re
from email.message import EmailMessage
from typing import Any
from urllib.parse import urlsplit

from aiosmtpd.controller import Controller

from server.embedded import free_port
from server.settings import Settings
from services.mailer import MAIL_KINDS

PUBLIC_URL = "https://collab.example"


class Inbox:
    """An aiosmtpd handler keeping every message it accepted; can refuse recipients (550)."""

    def __init__(self) -> None:
        self.messages: list[Any] = []
        self.refuse_recipients = False

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        if self.refuse_recipients:
            return "550 5.1.1 no such mailbox"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        self.messages.append(envelope)
        return "250 Message accepted for delivery"

    def parsed(self) -> list[EmailMessage]:
        return [parsed(envelope) for envelope in self.messages]


class SmtpServer:
    def __init__(self) -> None:
        self.inbox = Inbox()
        self.port = free_port()
        self.controller: Controller | None = None

    def start(self) -> None:
        self.controller = Controller(self.inbox, hostname="127.0.0.1", port=self.port)
        self.controller.start()

    def stop(self) -> None:
        if self.controller is not None:
            self.controller.stop()
            self.controller = None


def smtp_settings(settings: Settings, smtp: SmtpServer) -> Settings:
    """The test node's settings pointed at the test SMTP server (links start with PUBLIC_URL)."""
    return dataclasses.replace(
        settings,
        mail_backend="smtp",
        smtp_host="127.0.0.1",
        smtp_port=smtp.port,
        smtp_timeout_s=5.0,
        mail_from="Collab <noreply@collab.example>",
        public_base_url=PUBLIC_URL,
        mail_retry_base_s=60.0,
        mail_max_attempts=3,
    )


async def settle_other_mail(ctx: Any) -> None:
    """The database is shared by the session: mail other tests left pending (and notifications
    still waiting for their email) are not ours to send."""
    await ctx.db.execute(
        "UPDATE outbox SET processed_at = now() WHERE kind = ANY($1::text[])"
        " AND processed_at IS NULL",
        [kind.outbox_kind for kind in MAIL_KINDS],
    )
    await ctx.db.execute("UPDATE notifications SET email_state = 'seen' WHERE email_state IS NULL")


def parsed(envelope: Any) -> EmailMessage:
    message = email.message_from_bytes(envelope.content, policy=email.policy.default)
    assert isinstance(message, EmailMessage)
    return message


def text_of(message: EmailMessage) -> str:
    part = message.get_body(("plain",))
    assert isinstance(part, EmailMessage)
    return str(part.get_content())


def html_of(message: EmailMessage) -> str:
    part = message.get_body(("html",))
    assert isinstance(part, EmailMessage)
    return str(part.get_content())


def link_in(message: EmailMessage, path: str) -> str:
    """The one link to `path` in the text part, checked to be in the HTML part too; returned as
    the path + query a test client requests (the host is the public URL, not the test node)."""
    [url] = set(re.findall(rf"{re.escape(PUBLIC_URL + path)}\S*", text_of(message)))
    assert f'href="{url.replace("&", "&amp;")}"' in html_of(message)
    parts = urlsplit(url)
    return f"{parts.path}?{parts.query}" if parts.query else parts.path
