"""The dev mailbox: read the mail `collab dev` caught. `collab mailbox list`, `show N [--html]`,
`clear`.

`collab dev` runs a real SMTP server (aiosmtpd, `server/embedded.py` `EmbeddedMailbox`) and points
the mailer at it, so nothing leaves the machine and every message the mail job sent — invitations,
password resets, verification links, notifications — is kept in `<data dir>/mailbox/`, a Maildir.
This command reads that directory (no service needs to be running); messages are numbered in
arrival order, 1 the oldest.
"""

from __future__ import annotations

import argparse
import email.policy
import mailbox
import re
from email.message import EmailMessage
from pathlib import Path
from typing import Any

from ops._runtime import NotFoundError, add_common_arguments, run_command
from server.embedded import mailbox_dir
from server.settings import Settings

# Maildir keys start with the delivery time: "<seconds>.M<microseconds>P<pid>Q<counter>.<host>".
_KEY = re.compile(r"^(\d+)\.M(\d+)P\d+Q(\d+)")
_URL = re.compile(r"https?://[^\s<>\"')]+")


def configure_parser(parser: argparse.ArgumentParser) -> None:
    actions = parser.add_subparsers(dest="action", required=True)
    add_common_arguments(actions.add_parser("list", help="every caught message, oldest first"))
    show = actions.add_parser("show", help="one message: headers, text (or --html) and links")
    show.add_argument("number", type=_positive, help="as `list` numbers them (1 = oldest)")
    show.add_argument("--html", action="store_true", help="the HTML part instead of the text")
    add_common_arguments(show)
    add_common_arguments(actions.add_parser("clear", help="delete every caught message"))


def _positive(value: str) -> int:
    try:
        number = int(value)
    except ValueError as err:
        raise argparse.ArgumentTypeError(f"not a message number: {value!r}") from err
    if number < 1:
        raise argparse.ArgumentTypeError(f"message numbers start at 1, got {number}")
    return number


def _order(key: str) -> tuple[int, int, int, str]:
    match = _KEY.match(key)
    if match is None:
        return (0, 0, 0, key)
    seconds, micros, counter = (int(group) for group in match.groups())
    return (seconds, micros, counter, key)


def _messages(box: mailbox.Maildir | None) -> list[tuple[str, EmailMessage]]:
    """(key, message) in arrival order; none if `collab dev` never caught any mail here."""
    found: list[tuple[str, EmailMessage]] = []
    if box is None:
        return found
    for key in sorted(box.keys(), key=_order):
        with box.get_file(key) as handle:
            message = email.message_from_bytes(handle.read(), policy=email.policy.default)
        assert isinstance(message, EmailMessage)
        found.append((key, message))
    return found


def _part(message: EmailMessage, subtype: str) -> str:
    part = message.get_body((subtype,))
    return str(part.get_content()) if isinstance(part, EmailMessage) else ""


def _summary(number: int, message: EmailMessage) -> dict[str, Any]:
    return {
        "number": number,
        "date": message.get("Date", ""),
        "from": message.get("From", ""),
        "to": message.get("X-RcptTo") or message.get("To", ""),
        "subject": message.get("Subject", ""),
    }


def read(data_dir: Path, action: str, number: int | None = None) -> Any:
    path = mailbox_dir(data_dir)
    box = mailbox.Maildir(path, factory=None, create=False) if (path / "new").is_dir() else None
    messages = _messages(box)
    if action == "list":
        return [_summary(n, message) for n, (_, message) in enumerate(messages, 1)]
    if action == "clear":
        for key, _ in messages:
            assert box is not None
            box.remove(key)
        return {"deleted": len(messages)}
    assert number is not None
    if number > len(messages):
        raise NotFoundError(f"no message {number} (the mailbox holds {len(messages)})")
    _, message = messages[number - 1]
    text = _part(message, "plain")
    return {
        **_summary(number, message),
        "headers": {name: str(value) for name, value in message.items()},
        "text": text,
        "html": _part(message, "html"),
        "links": list(dict.fromkeys(_URL.findall(text))),
    }


def _render(action: str, html: bool) -> Any:
    def render(payload: Any) -> str:
        if action == "list":
            if not payload:
                return "no mail caught yet"
            return "\n".join(
                f"{m['number']:>4}  {m['date']}  {m['to']}  {m['subject']}" for m in payload
            )
        if action == "clear":
            return f"deleted {payload['deleted']} message(s)"
        headers = "\n".join(f"{name}: {value}" for name, value in payload["headers"].items())
        return f"{headers}\n\n{payload['html'] if html else payload['text']}"

    return render


def run(args: argparse.Namespace) -> int:
    settings = Settings.from_env()
    data_dir = (args.data_dir or settings.data_dir).resolve()

    async def work(_settings: Settings) -> Any:
        return read(data_dir, args.action, getattr(args, "number", None))

    return run_command(
        args,
        work,
        settings=settings,
        render=_render(args.action, bool(getattr(args, "html", False))),
    )
