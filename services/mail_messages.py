"""The emails the product sends, rendered from Jinja2 templates (`services/mail_templates/`).

Every message has a text and an HTML part from `<name>.txt` and `<name>.html`; the text template
sets the subject (`{% set subject %}…{% endset %}`), so wording lives in one place per message.
HTML templates are autoescaped (a workspace called `<script>` arrives as text); text ones are not.
Undefined variables are errors (`StrictUndefined`), so a template and its caller cannot drift
silently. The mailer (`services/mailer.py`) never knows what a message says, and a template can
be rendered and tested alone.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from email.message import EmailMessage
from email.utils import formatdate, make_msgid
from functools import cache
from typing import TYPE_CHECKING, Any, Protocol

from models.db import Database
from server.settings import Settings

if TYPE_CHECKING:
    import jinja2


@cache
def _templates() -> jinja2.Environment:
    """The templates' environment, made (and Jinja2 imported, ~3 MB) on first use: a node that
    sends no mail never pays for it."""
    import jinja2

    return jinja2.Environment(
        loader=jinja2.PackageLoader("services", "mail_templates"),
        autoescape=jinja2.select_autoescape(enabled_extensions=("html",), default_for_string=False),
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )


class MailDeps(Protocol):
    """What the mail jobs use: the settings (backend, addresses, links) and the database."""

    @property
    def settings(self) -> Settings: ...

    @property
    def db(self) -> Database: ...


@dataclass(frozen=True)
class Rendered:
    subject: str
    text: str
    html: str


def absolute_url(settings: Settings, path: str) -> str:
    """A link users can open: the app's public address plus a path."""
    return settings.public_base_url.rstrip("/") + path


def render(name: str, context: Mapping[str, Any]) -> Rendered:
    """Subject, text and HTML of template `name` with `context`."""
    text_module = _templates().get_template(f"{name}.txt").make_module(dict(context))
    subject = " ".join(str(getattr(text_module, "subject", "")).split())
    if not subject:
        raise ValueError(f"mail template {name}.txt sets no subject")
    html = _templates().get_template(f"{name}.html").render({**context, "subject": subject})
    return Rendered(subject, str(text_module).lstrip("\n"), html)


def render_page(name: str, context: Mapping[str, Any]) -> str:
    """An HTML page a mail's link opens (the unsubscribe confirmation), in the mails' layout."""
    return _templates().get_template(f"{name}.html").render(dict(context))


def compose(
    settings: Settings,
    to: str,
    rendered: Rendered,
    headers: Mapping[str, str] | None = None,
) -> EmailMessage:
    """A complete message (text + HTML alternatives) from the configured sender."""
    message = EmailMessage()
    message["From"] = settings.mail_from
    message["To"] = to
    message["Subject"] = rendered.subject
    # RFC 5322 requires Date (its absence costs spam score, and mail clients sort by it); the
    # message is built when the mail job sends it, so this is the time it leaves.
    message["Date"] = formatdate(usegmt=True)
    message["Message-ID"] = make_msgid(domain="collab")
    for name, value in (headers or {}).items():
        message[name] = value
    message.set_content(rendered.text)
    message.add_alternative(rendered.html, subtype="html")
    return message


def invitation_message(payload: dict[str, Any], settings: Settings) -> EmailMessage:
    """The invitation a workspace member sent (`services/workspaces.py` `invite`)."""
    context = {
        "inviter_name": payload.get("inviter_name"),
        "workspace_name": payload["workspace_name"],
        "role": payload["role"],
        # Rows queued before the mail linked to the web app carry the API path instead.
        "accept_url": absolute_url(settings, payload.get("invite_path") or payload["accept_path"]),
        "expires_at": payload["expires_at"],
    }
    return compose(settings, payload["to"], render("invitation", context))
