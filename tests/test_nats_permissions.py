"""The shipped NATS account config (ops/deploy/nats/accounts.conf) enforces S3 and S19.

External tools may read the documented subjects but cannot publish document updates or events,
and cannot purge, delete or reconfigure the streams.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import subprocess
from pathlib import Path

import nats
import nats.errors
import nats.js.errors
import pytest

from bus.jetstream import DOCS_STREAM, ensure_streams
from server.embedded import _find_binary, _wait_for_port, free_port
from server.settings import Settings

ACCOUNTS = Path(__file__).parent.parent / "ops" / "deploy" / "nats" / "accounts.conf"


@pytest.fixture
def secured_nats(tmp_path):
    shutil.copy(ACCOUNTS, tmp_path / "accounts.conf")
    port = free_port()
    conf = tmp_path / "nats.conf"
    conf.write_text(
        f"listen: 127.0.0.1:{port}\n"
        f'jetstream {{ store_dir: "{tmp_path / "js"}" }}\n'
        "include ./accounts.conf\n"
    )
    env = {**os.environ, "COLLAB_NATS_APP_PASSWORD": "app-pw", "COLLAB_NATS_TOOLS_PASSWORD": "t-pw"}
    log = tmp_path / "nats.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [_find_binary("nats-server"), "-c", str(conf)],
            stdout=out,
            stderr=subprocess.STDOUT,
            env=env,
        )
    try:
        _wait_for_port(port, proc, "nats-server", log)
        yield port
    finally:
        proc.terminate()
        proc.wait(10)


async def _connect(port: int, user: str, password: str, errors: list[Exception]):
    async def on_error(err: Exception) -> None:
        errors.append(err)

    return await nats.connect(
        f"nats://{user}:{password}@127.0.0.1:{port}", error_cb=on_error, allow_reconnect=False
    )


async def test_tools_user_can_read_but_not_write_or_purge(secured_nats):
    app_errors: list[Exception] = []
    tool_errors: list[Exception] = []
    app = await _connect(secured_nats, "app", "app-pw", app_errors)
    tools = await _connect(secured_nats, "tools", "t-pw", tool_errors)
    try:
        app_js = app.jetstream()
        await ensure_streams(app_js, Settings())
        await app_js.publish("collab.doc.d1.update", b"\x00\x00", headers={"Nats-Msg-Id": "1"})

        tools_js = tools.jetstream(timeout=1)
        received = asyncio.get_running_loop().create_future()

        async def on_msg(msg) -> None:
            if not received.done():
                received.set_result(msg.data)

        sub = await tools_js.subscribe(
            "collab.doc.d1.update", stream=DOCS_STREAM, cb=on_msg, ordered_consumer=True
        )
        assert await asyncio.wait_for(received, 5) == b"\x00\x00"
        await sub.unsubscribe()

        with pytest.raises(
            (nats.errors.TimeoutError, nats.errors.NoRespondersError, nats.js.errors.Error)
        ):
            await tools_js.publish("collab.doc.d1.update", b"poison", timeout=1)
        with pytest.raises(
            (nats.errors.TimeoutError, nats.errors.NoRespondersError, nats.js.errors.Error)
        ):
            await tools_js.purge_stream(DOCS_STREAM)
        with pytest.raises(
            (nats.errors.TimeoutError, nats.errors.NoRespondersError, nats.js.errors.Error)
        ):
            await tools_js.delete_stream(DOCS_STREAM)
        await tools.flush()
        assert any("permissions violation" in str(e).lower() for e in tool_errors), tool_errors
        info = await app_js.stream_info(DOCS_STREAM)
        assert info.state.messages == 1
    finally:
        await tools.close()
        await app.close()
