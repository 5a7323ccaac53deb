"""kill -9 of a node mid-edit (R1, strong variant): no acknowledged update is lost, and the dead
node's clients' awareness disappears from the survivor within the y-protocols timeout.

The victim node runs as a real subprocess (`python -m server.cli serve`) on the test's Postgres,
NATS and Redis; the survivor is the test's in-process node. The Node process that runs the
victim's Yjs clients is SIGKILLed together with the victim, so client-side resync cannot hide a
server-side loss: a fresh client (new process, no local state) on the survivor must contain every
update that was acknowledged (JSON ack) or seen by a peer on the survivor.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import socket
import sys
import time
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import pycrdt
import pytest
import tornado.httpclient

from tests.realtime_support import RawSocket, document_with, ws_base
from tests.yjs_client import HarnessError, YjsNodeClients

pytestmark = pytest.mark.timeout(120)

REPO = Path(__file__).resolve().parent.parent
NODE_START_TIMEOUT_S = 30.0
# y-protocols' outdatedTimeout (30 s) + the 3 s check + NATS delay (RELIABILITY R1).
AWARENESS_GONE_WITHIN_S = 35.0


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@contextlib.asynccontextmanager
async def victim_node(stack, settings) -> AsyncIterator[tuple[asyncio.subprocess.Process, int]]:  # type: ignore[no-untyped-def]
    port = free_port()
    env = {
        **os.environ,
        "DATABASE_URL": stack.postgres.url(),
        "NATS_URL": stack.nats.url,
        "REDIS_URL": stack.redis.url,
        "COLLAB_JWT_SECRET": settings.jwt_secret,
        "COLLAB_NODE_ID": f"victim-{uuid.uuid4().hex[:6]}",
        "COLLAB_LOG_LEVEL": "WARNING",
    }
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "server.cli",
        "serve",
        "--port",
        str(port),
        "--no-migrate",
        cwd=REPO,
        env=env,
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.DEVNULL,
    )
    try:
        await wait_healthy(port, process)
        yield process, port
    finally:
        if process.returncode is None:
            process.kill()
        await process.wait()


async def wait_healthy(port: int, process: asyncio.subprocess.Process) -> None:
    """Poll /healthz until the subprocess serves (there is no other signal to wait on)."""
    client = tornado.httpclient.AsyncHTTPClient()
    deadline = time.monotonic() + NODE_START_TIMEOUT_S
    while time.monotonic() < deadline:
        assert process.returncode is None, "victim node exited during start-up"
        with contextlib.suppress(OSError, tornado.httpclient.HTTPClientError):
            response = await client.fetch(f"http://127.0.0.1:{port}/healthz", request_timeout=1)
            if response.code == 200:
                return
        await asyncio.sleep(0.1)
    raise AssertionError("victim node did not become healthy")


def sigkill(process: asyncio.subprocess.Process | None) -> None:
    if process is not None and process.returncode is None:
        os.kill(process.pid, signal.SIGKILL)


def markers(state: dict, key: str = "markers") -> set[str]:
    return set(state["json"].get(key, {}))


async def test_kill_9_loses_no_acknowledged_update(ctx, stack, settings, ws_port) -> None:
    setup = await document_with(ctx, "editor")
    token = setup.users["editor"].access_token
    roots = {"markers": "map", "json_markers": "map"}
    async with (
        victim_node(stack, settings) as (victim, port),
        YjsNodeClients() as editors,
        YjsNodeClients() as observers,
    ):
        editor_ids = {
            name: await editors.connect(name, ws_base(port), setup.doc_id, token)
            for name in ("e1", "e2")
        }
        await observers.connect("observer", ws_base(ws_port), setup.doc_id, token)
        json_editor = await RawSocket.json(port, setup.doc_id, token)
        await asyncio.gather(
            editors.wait_synced("e1"),
            editors.wait_synced("e2"),
            observers.wait_synced("observer"),
            json_editor.wait_type("sync"),
        )
        acked: dict[str, int] = {}
        killed = asyncio.Event()
        warmed_up, json_warmed_up = asyncio.Event(), asyncio.Event()

        async def yjs_edits() -> None:
            with contextlib.suppress(HarnessError):
                for i in range(10_000):
                    await editors.map_set("e1" if i % 2 else "e2", f"y{i}", i, key="markers")
                    if i == 40:
                        warmed_up.set()

        async def json_edits() -> None:
            doc = pycrdt.Doc()
            for i in range(10_000):
                before = doc.get_state()
                doc.get("json_markers", type=pycrdt.Map)[f"j{i}"] = i
                with contextlib.suppress(Exception):
                    await json_editor.operation(f"j{i}", doc.get_update(before))
                    reply = await json_editor.ack(f"j{i}", timeout_s=2)
                    if reply["type"] == "ack":
                        acked[f"j{i}"] = reply["version"]
                if len(acked) == 10:
                    json_warmed_up.set()
                if killed.is_set():
                    return

        edits = [asyncio.ensure_future(yjs_edits()), asyncio.ensure_future(json_edits())]
        # Mid-edit: once the survivor's peer has seen the first 40 of the victim's updates.
        await warmed_up.wait()
        await json_warmed_up.wait()
        target = {}
        for name, client_id in editor_ids.items():
            target[client_id] = (await editors.state(name))["state_vector_map"][str(client_id)]
        await observers.wait_state_vector("observer", target)
        sigkill(victim)
        sigkill(editors._process)  # the strong variant: the editors cannot resync
        killed.set()
        await asyncio.gather(*edits, return_exceptions=True)

        seen_by_peer = markers(await observers.state("observer", roots))
        assert len(acked) >= 10 and len(seen_by_peer) >= 40

        # The survivor keeps going (no stuck room) and a fresh client gets everything.
        await observers.map_set("observer", "after-kill", True, key="markers")
        async with YjsNodeClients() as fresh:
            await fresh.connect("fresh", ws_base(ws_port), setup.doc_id, token)
            await fresh.wait_synced("fresh")
            state = await fresh.state("fresh", roots)
            have = markers(state) | markers(state, "json_markers")
        missing_acked = set(acked) - have
        missing_seen = seen_by_peer - have
        assert not missing_acked, f"acknowledged but lost: {sorted(missing_acked)}"
        assert not missing_seen, f"seen by a peer but lost: {sorted(missing_seen)}"
        last = await ctx.doc_log.last_seq(setup.doc_id)
        assert max(acked.values()) <= last
        room = ctx.rooms.rooms[setup.doc_id]
        assert room.last_applied_seq == last
        await json_editor.aclose()


async def test_dead_nodes_awareness_disappears_within_the_timeout(
    ctx, stack, settings, ws_port
) -> None:
    """R1: removal time on the survivor - kill time <= ~35 s (30 s y-protocols timeout, renewals
    every 15 s, 3 s check). Uses the real 30 s timeout, so this test takes up to ~30 s."""
    setup = await document_with(ctx, "editor")
    token = setup.users["editor"].access_token
    cursor = {"user": {"name": "Doomed"}, "cursor": {"anchor": 1}}
    async with (
        victim_node(stack, settings) as (victim, port),
        YjsNodeClients() as doomed,
        YjsNodeClients() as observers,
    ):
        doomed_id = await doomed.connect("doomed", ws_base(port), setup.doc_id, token)
        await observers.connect("observer", ws_base(ws_port), setup.doc_id, token)
        json_observer = await RawSocket.json(ws_port, setup.doc_id, token)
        await asyncio.gather(
            doomed.wait_synced("doomed"),
            observers.wait_synced("observer"),
            json_observer.wait_type("sync"),
        )
        await doomed.set_awareness("doomed", cursor)
        await observers.wait_awareness("observer", doomed_id, cursor)
        await json_observer.wait_json(lambda m: m.get("client_id") == doomed_id and m.get("state"))

        sigkill(victim)
        sigkill(doomed._process)
        killed_at = time.monotonic()
        gone = await json_observer.wait_json(
            lambda m: m.get("client_id") == doomed_id and m.get("state", 1) is None,
            timeout_s=AWARENESS_GONE_WITHIN_S,
        )
        elapsed = time.monotonic() - killed_at
        assert gone["type"] == "presence"
        assert elapsed <= AWARENESS_GONE_WITHIN_S
        await observers.wait_awareness("observer", doomed_id, None, timeout_s=5)
        room = ctx.rooms.rooms[setup.doc_id]
        assert doomed_id not in {e.client_id for e in room.awareness.states()}
        print(json.dumps({"awareness_removed_after_s": round(elapsed, 1)}))
        await json_observer.aclose()
