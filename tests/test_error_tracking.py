"""Optional Sentry error tracking (issue 13 item 9), captured by a local HTTP endpoint used as
the DSN: the real sentry-sdk transport posts its envelopes here, no network involved.

A handler of the real app fails with an unexpected exception on a request that carries the
caller's access token in the Authorization header and in `?token=`, and the token inside the
exception message; the captured event must be tagged with the node, the request id and the user
id, and the token must appear nowhere in what was sent.
"""

from __future__ import annotations

import dataclasses
import gzip
import json
import os
import subprocess
import sys
import threading
import zlib
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
import sentry_sdk
import structlog

from handlers.base import BaseHandler
from ops.exit_codes import ExitCode
from server.error_tracking import REDACTED, init_error_tracking, scrub
from server.settings import Settings

FLUSH_TIMEOUT_S = 10.0
REPO = Path(__file__).resolve().parent.parent


class Capture:
    """Sentry envelopes posted to a local endpoint, decompressed and parsed."""

    def __init__(self) -> None:
        self.bodies: list[bytes] = []
        self.received = threading.Condition()
        capture = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                encoding = self.headers.get("Content-Encoding", "")
                if encoding == "gzip":
                    body = gzip.decompress(body)
                elif encoding == "deflate":
                    body = zlib.decompress(body)
                elif encoding == "br":
                    # sentry-sdk compresses with brotli whenever the package is importable
                    # (WeasyPrint's fonttools pulls it in), so the capture must read it too.
                    import brotli

                    body = brotli.decompress(body)
                with capture.received:
                    capture.bodies.append(body)
                    capture.received.notify_all()
                self.send_response(200)
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def dsn(self) -> str:
        return f"http://publickey@127.0.0.1:{self.server.server_address[1]}/1"

    def events(self) -> list[dict[str, Any]]:
        """The `event` items of every envelope (header line, then item header/payload pairs)."""
        found = []
        for body in self.bodies:
            lines = body.split(b"\n")
            for header, payload in zip(lines[1::2], lines[2::2], strict=False):
                if json.loads(header).get("type") == "event":
                    found.append(json.loads(payload))
        return found


@pytest.fixture
def capture() -> Iterator[Capture]:
    local = Capture()
    local.thread.start()
    try:
        yield local
    finally:
        sentry_sdk.get_client().close(timeout=2)
        sentry_sdk.init()  # no DSN: the SDK is inert again for the other tests
        local.server.shutdown()


class FailingHandler(BaseHandler):
    """An authenticated handler that fails with an unexpected error quoting the caller's token."""

    async def get(self) -> None:
        await self.require_user()
        token = (self.request.headers.get("Authorization") or "").removeprefix("Bearer ")
        raise RuntimeError(f"unexpected failure while holding {token}")


async def test_unexpected_error_is_tagged_and_scrubbed(app, ctx, settings, api, make_user, capture):
    assert init_error_tracking(dataclasses.replace(settings, sentry_dsn=capture.dsn))
    app.add_handlers(r".*", [(r"/test-boom", FailingHandler, {"ctx": ctx})])
    user = await make_user("sentry")
    token = user.access_token

    response = await api.get(
        f"/test-boom?token={token}&page=2",
        token=token,
        headers={"X-Request-Id": "req-sentry-1", "Sec-WebSocket-Protocol": token},
    )
    assert response.status == 500
    structlog.get_logger("collab.test").error("job.failed", detail=f"Bearer {token}")
    sentry_sdk.flush(FLUSH_TIMEOUT_S)

    events = capture.events()
    crash = next(e for e in events if e.get("exception"))
    assert crash["exception"]["values"][-1]["type"] == "RuntimeError"
    assert crash["tags"]["node"] == settings.node_id
    assert crash["tags"]["request_id"] == "req-sentry-1"
    assert crash["tags"]["user_id"] == user.id and crash["user"] == {"id": user.id}
    assert "page=2" in json.dumps(crash["request"])  # the request is described, minus secrets
    assert any("job.failed" in json.dumps(e) for e in events)  # ERROR log lines are events too
    everything = b"".join(capture.bodies).decode(errors="replace")
    assert token not in everything
    assert token.split(".")[1] not in everything  # not even the JWT's payload part
    assert REDACTED in everything


def test_off_by_default_and_no_client():
    assert Settings().sentry_dsn == ""
    assert init_error_tracking(Settings()) is False
    assert sentry_sdk.get_client().transport is None  # nothing could be sent


def test_scrub_redacts_credentials_at_any_depth():
    jwt = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJ4In0.c2lnbmF0dXJl"
    invite = "A" * 43
    event = {
        "request": {
            "url": f"http://h/api/v1/invitations/{invite}/accept/",
            "query_string": "token=abc&x=1",
            "headers": {"Authorization": "Bearer x", "Accept": "json"},
        },
        "extra": {"nested": [{"password": "hunter2"}, f"see {jwt}"]},
        "breadcrumbs": [["Cookie", "sid=1"]],
    }
    clean = json.dumps(scrub(event))
    for secret in (jwt, invite, "abc", "Bearer x", "hunter2", "sid=1"):
        assert secret not in clean
    assert "x=1" in clean and "json" in clean
    doc_path = "/api/v1/documents/0b9a4a8e-5c1e-4d4e-9a51-1f0d2b1e9c11/"
    assert scrub(doc_path) == doc_path  # UUIDs are not secrets


def test_serve_refuses_a_dsn_without_the_sdk(tmp_path, jwt_secret):
    """A DSN with sentry-sdk missing is a configuration error, not silently no tracking."""
    shadow = tmp_path / "sentry_sdk"
    shadow.mkdir()
    (shadow / "__init__.py").write_text("raise ImportError('not installed here')\n")
    env = {
        **os.environ,
        "PYTHONPATH": f"{tmp_path}{os.pathsep}{REPO}",
        "DATABASE_URL": "postgresql://x@127.0.0.1:1/x",
        "NATS_URL": "nats://127.0.0.1:1",
        "REDIS_URL": "redis://127.0.0.1:1/0",
        "COLLAB_JWT_SECRET": jwt_secret,
        "COLLAB_SENTRY_DSN": "http://key@127.0.0.1:1/1",
    }
    result = subprocess.run(
        [sys.executable, "-m", "server.cli", "serve", "--no-migrate"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == ExitCode.CONFIG
    assert "sentry-sdk is not installed" in result.stderr
