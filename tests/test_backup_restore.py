"""`collab backup` → wipe → `collab restore` with real Yjs clients (issue 13 item 4).

Two stock y-websocket clients edit through a real `collab serve` node on services of their own
(not the session stack: this test destroys them). Part of the document is compacted into a
Postgres snapshot (and the log purged behind it), part lives only in the stream, and edits go on
while the backup runs. Then everything is destroyed, `collab restore` fills fresh, empty
services, a node starts on them, and fresh clients (no local state) must hold every update that
was acknowledged before the backup began, and converge.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import shutil
import sys
import uuid
from pathlib import Path

import asyncpg
import nats
import pytest

from models.locks import LockNamespace
from models.migrate import migrate
from ops.exit_codes import ExitCode
from ops.stream_snapshot import restore_stream, snapshot_stream
from server.app import build_context
from server.embedded import EmbeddedStack
from server.settings import Settings
from services.snapshots import snapshot_document
from tests.app_nodes import AppNode, node_env
from tests.documents_support import Writer, make_doc_row
from tests.realtime_support import document_with, ws_base
from tests.yjs_client import HarnessError, YjsNodeClients

pytestmark = pytest.mark.timeout(400)

REPO = Path(__file__).resolve().parent.parent
ROOTS = {"markers": "map"}


async def collab(env: dict[str, str], *argv: str) -> tuple[int, str, str]:
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "server.cli",
        *argv,
        cwd=REPO,
        env={**os.environ, **env},
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(proc.communicate(), 240)
    return proc.returncode or 0, out.decode(), err.decode()


def stack_env(stack: EmbeddedStack, jwt_secret: str) -> dict[str, str]:
    return node_env(stack.postgres.url(), stack.nats.url, stack.redis.url, jwt_secret)


async def edit(
    clients: YjsNodeClients, names: tuple[str, ...], prefix: str, count: int
) -> set[str]:
    """`count` markers from alternating clients, then wait until every client has all of them:
    a marker another client received was stored by JetStream and fanned out (acknowledged)."""
    written = {f"{prefix}{i}" for i in range(count)}
    for i in range(count):
        await clients.map_set(names[i % len(names)], f"{prefix}{i}", i, key="markers")
    for name in names:
        await wait_markers(clients, name, written)
    return written


async def wait_markers(clients: YjsNodeClients, name: str, wanted: set[str]) -> dict:
    for _ in range(300):
        state = await clients.state(name, ROOTS)
        if wanted <= set(state["json"].get("markers", {})):
            return state
        await asyncio.sleep(0.05)
    raise AssertionError(f"{name} misses {sorted(wanted - set(state['json']['markers']))[:5]}")


async def test_backup_wipe_restore_keeps_every_acked_update(service_tmp_path, jwt_secret):
    tmp_path = service_tmp_path
    backup_dir = tmp_path / "backup"
    stack = EmbeddedStack(tmp_path / "a", fast_unsafe=True).start()
    node: AppNode | None = None
    try:
        migrate(stack.postgres.url())
        env = stack_env(stack, jwt_secret)
        settings = Settings(jwt_secret=jwt_secret).with_services(
            stack.postgres.url(), stack.nats.url, stack.redis.url
        )
        ctx = build_context(settings)
        await ctx.start()
        setup = await document_with(ctx, "editor")
        await ctx.stop()
        token = setup.users["editor"].access_token
        node = AppNode("before", env, tmp_path)
        await node.start()
        async with YjsNodeClients() as clients:
            for name in ("e1", "e2"):
                await clients.connect(name, ws_base(node.port), setup.doc_id, token)
                await clients.wait_synced(name)
            acked = await edit(clients, ("e1", "e2"), "snap", 30)
            code, out, err = await collab(env, "snapshot-now", "--doc", setup.doc_id, "--json")
            assert code == 0, err
            assert json.loads(out)["snapshots"][0]["status"] == "snapshotted"
            acked |= await edit(clients, ("e1", "e2"), "tail", 30)

            async def keep_editing() -> None:
                with contextlib.suppress(HarnessError):
                    for i in range(100_000):
                        await clients.map_set("e1", f"during{i}", i, key="markers")

            during = asyncio.create_task(keep_editing())
            code, out, err = await collab(env, "backup", str(backup_dir), "--json")
            during.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await during
            assert code == 0, err
            summary = json.loads(out)
            assert summary["streams"]["COLLAB_DOCS"]["messages"] > 0
        manifest = json.loads((backup_dir / "manifest.json").read_text())
        assert {s["name"] for s in manifest["streams"]} == {"COLLAB_DOCS", "COLLAB_EVENTS"}
        assert manifest["postgres"]["bytes"] > 0
    finally:
        if node is not None:
            await node.aclose()
        stack.stop()
    shutil.rmtree(tmp_path / "a")  # destroyed: nothing of the old services is left

    code, out, err = await collab({}, "backup", str(backup_dir))
    assert code == ExitCode.CANT_CREATE, err  # never writes into an existing backup

    fresh = EmbeddedStack(tmp_path / "b", fast_unsafe=True).start()
    node = None
    try:
        env = stack_env(fresh, jwt_secret)
        code, out, err = await collab(env, "restore", str(backup_dir), "--json")
        assert code == 0, err
        assert json.loads(out)["streams"]["COLLAB_DOCS"]["messages"] > 0
        code, out, err = await collab(env, "restore", str(backup_dir), "--json")
        assert code == ExitCode.CANT_CREATE and json.loads(out)["error"]["code"] == "not_empty"

        node = AppNode("after", env, tmp_path)
        await node.start()
        async with YjsNodeClients() as clients:
            for name in ("f1", "f2"):
                await clients.connect(name, ws_base(node.port), setup.doc_id, token)
                await clients.wait_synced(name)
            restored = await wait_markers(clients, "f1", acked)
            await clients.map_set("f2", "after-restore", 1, key="markers")
            both = set(restored["json"]["markers"]) | {"after-restore"}
            first = await wait_markers(clients, "f1", both)
            second = await wait_markers(clients, "f2", both)
            assert first["state_hash"] == second["state_hash"]
        code, out, err = await collab(env, "verify", "--doc", setup.doc_id, "--json")
        if "invalid choice" not in err:  # verify lands separately
            assert code == 0, out + err
    finally:
        if node is not None:
            await node.aclose()
        fresh.stop()

    # A fresh data dir: no URLs, no running `collab dev` — restore starts the embedded services
    # there itself; `collab dev --data-dir` would then serve the restored state.
    data_dir = tmp_path / "restored-dev"
    no_urls = {"DATABASE_URL": "", "NATS_URL": "", "REDIS_URL": ""}
    code, out, err = await collab(no_urls, "restore", str(backup_dir), "--data-dir", str(data_dir))
    assert code == 0, err
    dev = EmbeddedStack(data_dir).start()
    try:
        restored_doc = await asyncpg.connect(dev.postgres.url())
        try:
            assert await restored_doc.fetchval(
                "SELECT count(*) FROM documents WHERE id = $1", uuid.UUID(setup.doc_id)
            )
        finally:
            await restored_doc.close()
        nc = await nats.connect(dev.nats.url)
        try:
            info = await nc.jetstream().stream_info("COLLAB_DOCS")
            assert info.state.messages == summary["streams"]["COLLAB_DOCS"]["messages"]
        finally:
            await nc.close()
    finally:
        dev.stop()


async def test_restore_refuses_a_damaged_or_unfinished_backup(tmp_path):
    code, _out, err = await collab({}, "restore", str(tmp_path), "--data-dir", str(tmp_path))
    assert code == ExitCode.NOT_FOUND and "manifest.json" in err
    (tmp_path / "manifest.json").write_text(
        json.dumps(
            {
                "format": 1,
                "created_at": "x",
                "postgres": {
                    "file": "postgres.dump",
                    "bytes": 3,
                    "sha256": "0" * 64,
                    "server_version": "17",
                    "pg_dump": "pg_dump",
                },
                "streams": [],
            }
        )
    )
    (tmp_path / "postgres.dump").write_bytes(b"abc")
    code, _out, err = await collab({}, "restore", str(tmp_path), "--data-dir", str(tmp_path))
    assert code == ExitCode.IO_ERROR and "postgres.dump" in err


async def test_no_snapshot_commits_while_a_backup_holds_the_fence(ctx, settings):
    writer = Writer(ctx.doc_log, await make_doc_row(ctx))
    await writer.type_text("fenced")
    fence = await asyncpg.connect(settings.database_url)
    try:
        await fence.execute("SELECT pg_advisory_lock($1::int, 0)", LockNamespace.BACKUP_FENCE)
        assert (await snapshot_document(ctx, writer.doc_id)).status == "locked"
    finally:
        await fence.close()
    assert (await snapshot_document(ctx, writer.doc_id)).status == "snapshotted"


async def test_a_single_server_stream_snapshot_restores_into_a_3_node_cluster(
    stack, nats_cluster, tmp_path
):
    """The dev → production direction: JetStream's snapshot of an R1 stream, restored at R3."""
    name = f"T{uuid.uuid4().hex[:8].upper()}"
    source = await nats.connect(stack.nats.url)
    target = await nats.connect(nats_cluster.url.split(","))
    try:
        js = source.jetstream()
        await js.add_stream(name=name, subjects=[f"{name}.>"])
        for i in range(500):
            await js.publish(f"{name}.{i % 5}", f"message {i}".encode())
        await js.purge_stream(name, subject=f"{name}.3")
        archive = await snapshot_stream(source, name, tmp_path)
        state = await restore_stream(
            target, archive, tmp_path, {**archive.config, "num_replicas": 3}
        )
        assert (state["messages"], state["last_seq"]) == (400, 500)
        info = await target.jetstream().stream_info(name)
        assert info.config.num_replicas == 3 and info.state.messages == 400
        assert (await target.jetstream().get_msg(name, 500)).data == b"message 499"
        await js.delete_stream(name)
    finally:
        await source.close()
        await target.close()
