"""`COLLAB_EVENT_LOOP`: which asyncio loop a node runs on (server/event_loop.py), and a node on
uvloop (the default where it is installed) serving a real Yjs client end to end."""

from __future__ import annotations

import asyncio
import dataclasses
import subprocess
import sys
from collections.abc import Iterator

import pytest
import uvloop

from server.embedded import free_port
from server.event_loop import install_event_loop
from server.settings import ConfigError, Settings
from tests.realtime_support import document_with, ws_base
from tests.test_cli import _wait_ready
from tests.yjs_client import YjsNodeClients


@pytest.fixture
def restore_policy() -> Iterator[None]:
    yield
    asyncio.set_event_loop_policy(None)


def test_auto_picks_uvloop_when_installed(restore_policy: None) -> None:
    assert Settings.from_env({}).event_loop == "auto"
    assert install_event_loop(Settings()) == "uvloop"
    assert isinstance(asyncio.get_event_loop_policy(), uvloop.EventLoopPolicy)


def test_asyncio_forces_the_standard_loop(restore_policy: None) -> None:
    settings = Settings.from_env({"COLLAB_EVENT_LOOP": "asyncio"})
    assert install_event_loop(settings) == "asyncio"
    assert type(asyncio.get_event_loop_policy()) is asyncio.DefaultEventLoopPolicy


def test_an_unknown_loop_is_a_config_error_naming_the_variable(restore_policy: None) -> None:
    with pytest.raises(ConfigError, match="COLLAB_EVENT_LOOP"):
        install_event_loop(dataclasses.replace(Settings(), event_loop="trio"))


def test_serve_refuses_an_unknown_loop_with_the_config_exit_code() -> None:
    env = {
        "DATABASE_URL": "postgresql://x",
        "NATS_URL": "nats://x",
        "REDIS_URL": "redis://x",
        "COLLAB_JWT_SECRET": "s" * 40,
        "COLLAB_EVENT_LOOP": "trio",
        "PATH": "/usr/bin:/bin",
    }
    result = subprocess.run(
        [sys.executable, "-m", "server.cli", "serve", "--no-migrate"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 78, result.stderr
    assert "COLLAB_EVENT_LOOP" in result.stderr


@pytest.mark.timeout(120)
async def test_a_node_on_uvloop_serves_stock_yjs_clients(ctx, settings, tmp_path) -> None:  # type: ignore[no-untyped-def]
    """`collab serve` with the default (`auto`) runs on uvloop, and two stock y-websocket
    clients edit one document through it (publish, JetStream, fan-out)."""
    setup = await document_with(ctx, "editor")
    token = setup.users["editor"].access_token
    port = free_port()
    log = tmp_path / "serve.log"
    env = {
        "PATH": "/usr/bin:/bin",
        "DATABASE_URL": settings.database_url,
        "NATS_URL": settings.nats_url,
        "REDIS_URL": settings.redis_url,
        "COLLAB_JWT_SECRET": settings.jwt_secret,
    }
    with log.open("wb") as out:
        proc = subprocess.Popen(  # noqa: ASYNC220 (started once; shared with test_cli._wait_ready)
            [sys.executable, "-m", "server.cli", "serve", "--port", str(port), "--no-migrate"],
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        await asyncio.to_thread(_wait_ready, proc, port)
        assert "on the uvloop event loop" in log.read_text()
        async with YjsNodeClients() as clients:
            for name in ("a", "b"):
                await clients.connect(name, ws_base(port), setup.doc_id, token)
                await clients.wait_synced(name)
            await clients.insert_text("a", 0, "over uvloop")
            await clients.wait_json("b", {"text": "over uvloop"}, roots={"text": "text"})
    finally:
        proc.terminate()
        assert proc.wait(60) == 0
