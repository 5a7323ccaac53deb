"""Revocation stays fail-closed when Redis forgets (RELIABILITY S20): FLUSHALL, a restart that
loses everything, a restart from a persisted snapshot older than the logout, eviction of the
denylist key. Each case over HTTP and on the WebSocket handshake, for a logged-out token, a family
revoked for refresh-token reuse and a password change."""

from __future__ import annotations

import asyncio
import dataclasses
import json
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis
import tornado.httpclient
import yaml

from models.cache import BREAKER_OPEN_S
from server.embedded import EmbeddedRedis
from server.runner import RunningNode, start_node
from services.denylist import COMPLETE, KEY, Denylist, jti_field
from services.session_cleanup import CLEANUP_SESSIONS_JOB
from tests.realtime_support import RawSocket, document_with

pytestmark = pytest.mark.timeout(90)

ME = "/api/v1/auth/me/"
LOGOUT = "/api/v1/auth/logout/"
REFRESH = "/api/v1/auth/token/refresh/"
LOGIN = "/api/v1/auth/login/"


async def call(port: int, method: str, path: str, token: str | None = None, body=None) -> int:  # type: ignore[no-untyped-def]
    headers = {"Content-Type": "application/json"}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    response = await tornado.httpclient.AsyncHTTPClient().fetch(
        f"http://127.0.0.1:{port}{path}",
        method=method,
        headers=headers,
        body=json.dumps(body) if body is not None else (b"" if method == "POST" else None),
        raise_error=False,
    )
    return response.code


async def handshake_code(port: int, doc_id: str, token: str) -> int | None:
    """The close code of a document socket (None: it was accepted and is open)."""
    sock = await RawSocket.open(port, doc_id, token)
    try:
        return await sock.wait_closed(5)
    except TimeoutError:
        return None
    finally:
        await sock.aclose()


async def refused_everywhere(port: int, doc_id: str, token: str) -> bool:
    return (
        await call(port, "GET", ME, token) == 401
        and await handshake_code(port, doc_id, token) == 4401
    )


def denylist(ctx_or_node) -> Denylist:  # type: ignore[no-untyped-def]
    ctx = getattr(ctx_or_node, "ctx", ctx_or_node)
    return ctx.denylist


async def editor_session(ctx, port: int) -> tuple[str, dict]:  # type: ignore[no-untyped-def]
    """A document and a real login of its editor (access + refresh token)."""
    setup = await document_with(ctx, "editor")
    email = f"rev-{uuid.uuid4().hex[:10]}@example.com"
    password = "correct horse battery staple"
    register = {"email": email, "password": password, "display_name": "Rev"}
    assert await call(port, "POST", "/api/v1/auth/register/", body=register) == 201
    user_id = await ctx.db.fetchval("SELECT id FROM users WHERE email = $1", email)
    await ctx.db.execute(
        "INSERT INTO workspace_members (workspace_id, user_id, role) VALUES ($1, $2, 'member')",
        setup.workspace_id,
        user_id,
    )
    response = await tornado.httpclient.AsyncHTTPClient().fetch(
        f"http://127.0.0.1:{port}{LOGIN}",
        method="POST",
        headers={"Content-Type": "application/json"},
        body=json.dumps({"email": email, "password": password}),
    )
    return setup.doc_id, json.loads(response.body)


async def flush(ctx) -> None:  # type: ignore[no-untyped-def]
    await ctx.cache.run(lambda r: r.flushall())


async def test_logout_stays_refused_after_flushall(ctx, ws_port) -> None:
    doc_id, pair = await editor_session(ctx, ws_port)
    _, other = await editor_session(ctx, ws_port)
    access = pair["access_token"]
    assert await call(ws_port, "POST", LOGOUT, access) == 204
    assert await refused_everywhere(ws_port, doc_id, access)

    await flush(ctx)
    assert await refused_everywhere(ws_port, doc_id, access)
    assert await call(ws_port, "GET", ME, other["access_token"]) == 200  # no blanket refusal
    # The check started a reload: the copy is complete again and holds the mark.
    assert await denylist(ctx).wait_reloaded()
    stored = await ctx.cache.run(lambda r: r.hmget(KEY, [COMPLETE]))
    assert stored[0].decode() == ctx.cache.server_run_id
    assert await refused_everywhere(ws_port, doc_id, access)
    assert await call(ws_port, "GET", ME, other["access_token"]) == 200


async def test_evicting_the_denylist_key_fails_closed(ctx, ws_port) -> None:
    """Eviction removes whole keys: losing the hash loses its completeness mark with it."""
    doc_id, pair = await editor_session(ctx, ws_port)
    assert await call(ws_port, "POST", LOGOUT, pair["access_token"]) == 204
    assert await call(ws_port, "GET", ME, pair["access_token"]) == 401
    await denylist(ctx).wait_reloaded()
    await ctx.cache.run(lambda r: r.delete(KEY))
    assert await refused_everywhere(ws_port, doc_id, pair["access_token"])


async def test_reuse_revoked_family_stays_refused_after_flushall(ctx, ws_port) -> None:
    doc_id, pair = await editor_session(ctx, ws_port)
    rotated = await tornado.httpclient.AsyncHTTPClient().fetch(
        f"http://127.0.0.1:{ws_port}{REFRESH}",
        method="POST",
        headers={"Content-Type": "application/json"},
        body=json.dumps({"refresh_token": pair["refresh_token"]}),
    )
    second = json.loads(rotated.body)["access_token"]
    assert await call(ws_port, "GET", ME, second) == 200
    replay = {"refresh_token": pair["refresh_token"]}
    assert await call(ws_port, "POST", REFRESH, body=replay) == 401  # reuse: family revoked
    assert await refused_everywhere(ws_port, doc_id, second)

    await flush(ctx)
    for token in (second, pair["access_token"]):
        assert await refused_everywhere(ws_port, doc_id, token)


async def test_password_change_stays_refused_after_flushall(ctx, ws_port) -> None:
    doc_id, pair = await editor_session(ctx, ws_port)
    change = {"current_password": "correct horse battery staple", "new_password": "x" * 16}
    assert await call(ws_port, "PATCH", ME, pair["access_token"], change) == 200
    await flush(ctx)
    assert await refused_everywhere(ws_port, doc_id, pair["access_token"])


async def test_logout_stays_refused_after_a_redis_restart(ctx, ws_port, stack) -> None:
    """The session's redis-server (no persistence in tests) is stopped and started again."""
    doc_id, pair = await editor_session(ctx, ws_port)
    access = pair["access_token"]
    assert await call(ws_port, "POST", LOGOUT, access) == 204
    stack.redis.stop()
    stack.redis.start()  # same port, nothing persisted
    # First call meets a dead connection (Postgres decides); after the breaker closes, the new
    # connection reaches an empty Redis (Postgres decides, a reload starts).
    assert await refused_everywhere(ws_port, doc_id, access)
    await asyncio.sleep(BREAKER_OPEN_S + 0.2)  # the breaker is a time rule: let it close
    assert await refused_everywhere(ws_port, doc_id, access)
    assert await denylist(ctx).wait_reloaded()
    assert await refused_everywhere(ws_port, doc_id, access)


@pytest.fixture
def persistent_redis(tmp_path) -> Iterator[EmbeddedRedis]:  # type: ignore[no-untyped-def]
    """A redis-server of its own that saves snapshots (like a production Redis with RDB)."""
    redis = EmbeddedRedis(tmp_path / "redis", persist=True)
    redis.start()
    yield redis
    redis.stop()


@pytest.fixture
def node_on(io_loop, persistent_redis, settings) -> Iterator[RunningNode]:  # type: ignore[no-untyped-def]
    """A node whose Redis is `persistent_redis` (same Postgres and NATS as the test node)."""
    node_settings = dataclasses.replace(
        settings, redis_url=persistent_redis.url, port=0, node_id=f"p-{uuid.uuid4().hex[:6]}"
    )
    node = io_loop.run_sync(lambda: start_node(node_settings))
    yield node
    io_loop.run_sync(node.stop)


async def test_a_restart_from_an_older_snapshot_is_not_trusted(
    ctx, persistent_redis, node_on
) -> None:
    """A Redis restarted from a snapshot taken before the logout brings back the completeness
    mark but not the logout's mark: the new process's run_id tells them apart."""
    port = node_on.port
    doc_id, pair = await editor_session(ctx, port)
    access = pair["access_token"]
    assert await call(port, "GET", ME, access) == 200
    assert await denylist(node_on).wait_reloaded()
    cache = node_on.ctx.cache
    old_run_id = cache.server_run_id
    await cache.run(lambda r: r.save())  # the snapshot: complete, no mark for `access`
    assert await call(port, "POST", LOGOUT, access) == 204
    assert await call(port, "GET", ME, access) == 401

    persistent_redis.process.kill()  # type: ignore[union-attr]
    persistent_redis.start()  # same dir and port: loads the old snapshot
    inspector = redis.Redis.from_url(persistent_redis.url)
    restored = inspector.hmget(KEY, [COMPLETE, jti_field(_jti(access))])
    inspector.close()
    assert restored[0].decode() == old_run_id and restored[1] is None  # the dangerous state

    # Pooled connections to the killed process fail first (Postgres decides, the breaker opens);
    # then a new connection learns the new run_id and the old `complete` is not trusted.
    for _ in range(5):
        assert await refused_everywhere(port, doc_id, access)
        if cache.server_run_id not in (None, old_run_id):
            break
        await asyncio.sleep(BREAKER_OPEN_S + 0.2)  # the breaker is a time rule: let it close
    assert cache.server_run_id not in (None, old_run_id)
    assert await refused_everywhere(port, doc_id, access)
    assert await denylist(node_on).wait_reloaded()
    assert await refused_everywhere(port, doc_id, access)


def _jti(token: str) -> str:
    import jwt

    return str(jwt.decode(token, options={"verify_signature": False})["jti"])


async def test_prune_drops_only_marks_no_live_token_can_match(ctx) -> None:
    now = int(time.time())
    window = denylist(ctx).window_s
    marks = {
        "j:gone": now - 1,
        "j:live": now + 60,
        "f:gone": now - 1,
        "f:live": now + 60,
        "u:gone": now - window - 1,
        "u:live": now - 10,
    }
    await ctx.cache.run(lambda r: r.hset(KEY, mapping={**marks, COMPLETE: "x"}))
    run = await ctx.scheduler.run_now(CLEANUP_SESSIONS_JOB)
    assert run.result["denylist_marks"] == 3
    left = await ctx.cache.run(lambda r: r.hkeys(KEY))
    assert sorted(k.decode() for k in left) == [COMPLETE, "f:live", "j:live", "u:live"]


def test_compose_redis_keeps_what_it_acknowledged() -> None:
    """The production-like Redis neither evicts keys it holds (no `allkeys-*`, no `volatile-*`
    that would drop rate-limit counters) nor forgets them on a restart (append-only file on a
    volume)."""
    compose = yaml.safe_load((Path(__file__).parent.parent / "docker-compose.yml").read_text())
    redis_service = compose["services"]["redis"]
    argv = redis_service["command"]
    options = dict(zip(argv[1::2], argv[2::2], strict=True))
    assert options["--maxmemory-policy"] == "noeviction"
    assert options["--appendonly"] == "yes"
    assert options["--appendfsync"] in ("everysec", "always")
    assert any(v.endswith(":/data") for v in redis_service["volumes"])
