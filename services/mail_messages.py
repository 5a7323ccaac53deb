"""The emails the product sends, built from the payload their outbox row carries.

Each builder turns one payload into a complete `EmailMessage` (text and HTML alternatives), so the
mailer (`services/mailer.py`) never knows what a message says and a template can be tested alone.
"""

from __future__ import annotations

import html
from collections.abc import Callable
from email.message import EmailMessage
from email.utils import make_msgid
from typing import Any

from server.settings import Settings

MessageBuilder = Callable[[dict[str, Any], Settings], EmailMessage]


def absolute_url(settings: Settings, path: str) -> str:
    """A link users can open: the app's public address plus an API path."""
    return settings.public_base_url.rstrip("/") + path


def _message(settings: Settings, to: str, subject: str, text: str, body_html: str) -> EmailMessage:
    message = EmailMessage()
    message["From"] = settings.mail_from
    message["To"] = to
    message["Subject"] = subject
    message["Message-ID"] = make_msgid(domain="collab")
    message.set_content(text)
    message.add_alternative(body_html, subtype="html")
    return message


def invitation_message(payload: dict[str, Any], settings: Settings) -> EmailMessage:
    """The invitation a workspace member sent (`services/workspaces.py` `invite`)."""
    inviter = payload.get("inviter_name") or "Someone"
    workspace = payload["workspace_name"]
    link = absolute_url(settings, payload["accept_path"])
    subject = f"{inviter} invited you to {workspace} on Collab"
    text = (
        f"{inviter} invited you to join the workspace “{workspace}” as {payload['role']}.\n\n"
        f"Accept the invitation:\n{link}\n\n"
        f"The link works once and expires at {payload['expires_at']}.\n"
        "If you did not expect this invitation, ignore this email.\n"
    )
    esc = html.escape
    body_html = (
        f"<p>{esc(inviter)} invited you to join the workspace <strong>{esc(workspace)}</strong>"
        f" as {esc(payload['role'])}.</p>"
        f'<p><a href="{esc(link)}">Accept the invitation</a></p>'
        f"<p>The link works once and expires at {esc(payload['expires_at'])}.<br>"
        "If you did not expect this invitation, ignore this email.</p>"
    )
    return _message(settings, payload["to"], subject, text, body_html)
