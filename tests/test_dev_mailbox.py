"""`collab dev`'s mail catcher: a real SMTP server (aiosmtpd) keeping what it receives in a
Maildir, and `collab mailbox` to read it — first against the catcher alone with the real mailer,
then through a real `collab dev` where a registration's verification link arrives and works."""

from __future__ import annotations

import asyncio
import dataclasses
import json
import time
from pathlib import Path

import pytest

from server.cli import dev_public_url, main
from server.dev_services import read_file, services_path
from server.embedded import EmbeddedMailbox, free_port, mailbox_dir
from server.settings import Settings
from services.mail_messages import compose, render
from services.mailer import send_smtp
from tests.test_cli import _request, _service_processes, _start_dev, _stop, _wait_ready

MAIL_WAIT_S = 60


def mailbox(capsys, data_dir: Path, *args: str) -> tuple[int, object]:
    """Run `collab mailbox … --json` in-process; (exit code, parsed stdout)."""
    code = main(["mailbox", *args, "--json", "--data-dir", str(data_dir)])
    out = capsys.readouterr().out
    return code, json.loads(out) if out.strip() else None


@pytest.fixture
def catcher(service_tmp_path):
    data_dir = service_tmp_path / "data"
    server = EmbeddedMailbox(mailbox_dir(data_dir))
    server.start()
    yield data_dir, server
    server.stop()


def test_mailbox_reads_what_the_mailer_sent(catcher, capsys):
    data_dir, server = catcher
    settings = dataclasses.replace(
        Settings(), mail_backend="smtp", smtp_host="127.0.0.1", smtp_port=server.port
    )
    for n in (1, 2):
        context = {
            "display_name": f"Dev {n}",
            "email": f"dev{n}@example.com",
            "reset_url": f"http://127.0.0.1:8000/reset?token=t{n}",
            "ttl_minutes": 60,
        }
        message = compose(settings, context["email"], render("password_reset", context))
        asyncio.run(send_smtp(settings, message))

    code, listed = mailbox(capsys, data_dir, "list")
    assert code == 0
    assert [(m["number"], m["to"], m["subject"]) for m in listed] == [
        (1, "dev1@example.com", "Reset your Collab password"),
        (2, "dev2@example.com", "Reset your Collab password"),
    ]
    code, shown = mailbox(capsys, data_dir, "show", "2")
    assert code == 0
    assert shown["links"] == ["http://127.0.0.1:8000/reset?token=t2"]
    assert "Hello Dev 2," in shown["text"]
    assert 'href="http://127.0.0.1:8000/reset?token=t2"' in shown["html"]
    assert shown["headers"]["X-MailFrom"] == "collab@localhost"

    assert main(["mailbox", "show", "2", "--html", "--data-dir", str(data_dir)]) == 0
    assert "<!DOCTYPE html>" in capsys.readouterr().out
    assert main(["mailbox", "list", "--data-dir", str(data_dir)]) == 0
    assert "dev1@example.com  Reset your Collab password" in capsys.readouterr().out

    code, error = mailbox(capsys, data_dir, "show", "3")
    assert code == 66 and error["error"]["code"] == "not_found"
    for bad in ("0", "x", "-1"):
        with pytest.raises(SystemExit) as exited:
            main(["mailbox", "show", bad, "--data-dir", str(data_dir)])
        assert exited.value.code == 64
    capsys.readouterr()

    code, cleared = mailbox(capsys, data_dir, "clear")
    assert (code, cleared) == (0, {"deleted": 2})
    assert mailbox(capsys, data_dir, "list") == (0, [])


def test_an_empty_or_missing_mailbox_lists_nothing(service_tmp_path, capsys):
    assert mailbox(capsys, service_tmp_path / "never-ran", "list") == (0, [])
    code, error = mailbox(capsys, service_tmp_path / "never-ran", "show", "1")
    assert code == 66 and error["error"]["code"] == "not_found"
    assert not (service_tmp_path / "never-ran").exists()  # reading creates nothing


def wait_for_mail(data_dir: Path, capsys, count: int) -> list:
    """Poll the Maildir until `count` messages arrived (the mail job runs every few seconds)."""
    deadline = time.monotonic() + MAIL_WAIT_S
    while time.monotonic() < deadline:
        _, listed = mailbox(capsys, data_dir, "list")
        if len(listed) >= count:
            return listed
        time.sleep(0.25)
    raise AssertionError(f"{count} message(s) did not arrive within {MAIL_WAIT_S}s")


def test_dev_mail_links_open_the_dev_server():
    assert dev_public_url("127.0.0.1", 8123) == "http://127.0.0.1:8123"
    assert dev_public_url("0.0.0.0", 8000) == "http://127.0.0.1:8000"  # a wildcard bind
    assert dev_public_url("::", 8000) == "http://[::1]:8000"
    assert dev_public_url("fd00::5", 80) == "http://[fd00::5]:80"
    assert dev_public_url("devbox.local", 8000) == "http://devbox.local:8000"


@pytest.mark.timeout(300)
def test_collab_dev_catches_mail_and_its_link_works(service_tmp_path, capsys):
    data_dir = service_tmp_path / "data"
    port = free_port()
    proc = _start_dev(data_dir, port)
    try:
        _wait_ready(proc, port)
        services = read_file(services_path(data_dir))
        assert services.smtp_url.startswith("smtp://127.0.0.1:")
        email = "newcomer@example.com"
        status, _ = _request(
            f"http://127.0.0.1:{port}/api/v1/auth/register/",
            {"email": email, "password": "long enough password", "display_name": "New"},
        )
        assert status == 201
        [listed] = wait_for_mail(data_dir, capsys, 1)
        assert (listed["to"], listed["subject"]) == (email, "Confirm your email address for Collab")
        _, shown = mailbox(capsys, data_dir, "show", "1")
        [link] = shown["links"]
        # The link opens this server (its --port), not the default address.
        assert link.startswith(f"http://127.0.0.1:{port}/api/v1/auth/verify-email/confirm/?token=")
        status, checked = _request(link)
        assert (status, checked["email"]) == (200, email)
        token = link.split("token=", 1)[1]
        status, user = _request(
            f"http://127.0.0.1:{port}/api/v1/auth/verify-email/confirm/", {"token": token}
        )
        assert status == 200, user
        assert user["email"] == email and user["email_verified_at"]
    finally:
        assert _stop(proc) == 0
    assert [p for p in _service_processes(data_dir) if p.is_running()] == []
    # The mail outlives the run: readable with collab dev stopped.
    assert len(mailbox(capsys, data_dir, "list")[1]) == 1
