"""R6/R10: Postgres goes down for 30 s, then restarts mid-snapshot, under two nodes behind nginx.

Postgres of this module's own (the shared one is never stopped); nodes run the snapshot job every
second, so snapshots and purges are in full swing when Postgres goes. While it is down:

* documents already loaded keep being edited through the balancer (JetStream is the log);
* opening a document that no node has loaded fails with close 1013 "try again" — a stock
  y-websocket client retries by itself and syncs once Postgres is back; never an empty document;
* the snapshot job cannot commit, so **nothing is purged** (the subject's first sequence stays);
* REST answers 503 quickly and `/readyz` is 503.

After it is back: loads succeed, snapshots resume (monotonic), and a restart of Postgres while the
job runs (R10) costs at most a short window of 503s without restarting a node. Nothing
acknowledged or seen is lost (strong variant). Figures are printed for the README.
"""

from __future__ import annotations

import asyncio
import json
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace

import asyncpg
import nats
import pytest
import tornado.httpclient

from bus.jetstream import DOCS_STREAM, doc_update_subject
from models.db import Database
from models.migrate import migrate
from server.embedded import EmbeddedPostgres
from tests.app_nodes import AppNode, node_env
from tests.cluster_support import balanced_nodes
from tests.edit_load import EditLoad
from tests.realtime_support import document_with
from tests.yjs_client import YjsNodeClients

pytestmark = [pytest.mark.faults, pytest.mark.timeout(400)]

OUTAGE_S = 30.0
# REST during the outage: the asyncpg connect timeout / COLLAB_DB_COMMAND_TIMEOUT_S bound it.
REST_ERROR_BOUND_S = 6.0
SNAPSHOT_ENV = {"COLLAB_SNAPSHOT_INTERVAL_S": "1", "COLLAB_SNAPSHOT_MIN_UPDATES": "20"}


@pytest.fixture(scope="module")
def own_postgres() -> Iterator[EmbeddedPostgres]:
    with tempfile.TemporaryDirectory(prefix="collab-pg-outage-") as tmp:
        server = EmbeddedPostgres(Path(tmp) / "postgres", fast_unsafe=True)
        server.start()
        try:
            migrate(server.url())
            yield server
        finally:
            server.stop()


async def snapshot_seq(url: str, doc_id: str) -> int:
    conn = await asyncpg.connect(url, timeout=5)
    try:
        seq = await conn.fetchval(
            "SELECT seq FROM document_snapshots WHERE document_id = $1", doc_id
        )
    finally:
        await conn.close()
    return int(seq or 0)


async def wait_snapshot_past(url: str, doc_id: str, seq: int, timeout_s: float = 30) -> int:
    deadline = time.monotonic() + timeout_s
    while (current := await snapshot_seq(url, doc_id)) <= seq:
        assert time.monotonic() < deadline, f"no snapshot past {seq} (at {current})"
        await asyncio.sleep(0.2)
    return current


async def first_seq(nats_url: str, doc_id: str) -> int:
    """The oldest sequence still stored on the document's subject (a purge moves it)."""
    nc = await nats.connect(nats_url)
    try:
        msg = await nc.jetstream().get_msg(
            DOCS_STREAM, seq=1, next=True, subject=doc_update_subject(doc_id)
        )
    finally:
        await nc.close()
    return int(msg.seq or 0)


async def rest_get(base: str, path: str, token: str) -> tuple[int, float]:
    started = time.monotonic()
    response = await tornado.httpclient.AsyncHTTPClient().fetch(
        base + path,
        headers={"Authorization": f"Bearer {token}"},
        raise_error=False,
        request_timeout=30,
    )
    return response.code, time.monotonic() - started


async def wait_rest_ok(base: str, path: str, token: str, timeout_s: float) -> int:
    """Until the call answers 200; returns how many non-200 answers came first."""
    deadline, errors = time.monotonic() + timeout_s, 0
    while (await rest_get(base, path, token))[0] != 200:
        errors += 1
        assert time.monotonic() < deadline, f"{path} never recovered"
        await asyncio.sleep(0.1)
    return errors


async def all_readyz(nodes: list[AppNode]) -> list[int | None]:
    return list(await asyncio.gather(*(n.readyz_status() for n in nodes)))


async def new_document(db: Database, workspace_id: str, owner_id: str) -> str:
    return str(
        await db.fetchval(
            "INSERT INTO documents (workspace_id, title, created_by) VALUES ($1, 'B', $2)"
            " RETURNING id",
            workspace_id,
            owner_id,
        )
    )


async def test_postgres_down_30_s_then_restarted_mid_snapshot(
    stack, settings, own_postgres: EmbeddedPostgres, tmp_path
) -> None:
    url = own_postgres.url()
    db = Database(url, min_size=1, max_size=2, command_timeout_s=5)
    await db.start()
    try:
        data = SimpleNamespace(db=db, settings=settings)
        setup = await document_with(data, "editor")  # type: ignore[arg-type]
        doc_b = await new_document(db, setup.workspace_id, setup.users["owner"].id)
    finally:
        await db.stop()
    token = setup.users["editor"].access_token
    env = node_env(url, stack.nats.url, stack.redis.url, settings.jwt_secret, **SNAPSHOT_ENV)
    path_a = f"/api/v1/documents/{setup.doc_id}/"
    async with (
        balanced_nodes(env, 2, tmp_path) as (nodes, balancer),
        EditLoad(balancer.port, setup.doc_id, token) as load,
        YjsNodeClients() as late,
    ):
        load.start_editing()
        await load.wait_progress(acks=20, seen=40)
        before = await wait_snapshot_past(url, setup.doc_id, 0)
        purged_to = await first_seq(stack.nats.url, setup.doc_id)

        # --- R6: down 30 s ----------------------------------------------------------------
        own_postgres.stop()
        down_at = time.monotonic()
        await load.wait_progress(acks=20, seen=40, timeout_s=OUTAGE_S)
        assert await all_readyz(nodes) == [503, 503]
        status, rest_s = await rest_get(balancer.http_url, path_a, token)
        assert status == 503 and rest_s <= REST_ERROR_BOUND_S, (status, rest_s)
        await late.connect("late", balancer.ws_url, doc_b, token)
        closes = await late.wait_close("late", timeout_s=20)
        assert closes[0]["code"] == 1013, closes  # "try again later", never an empty document
        await asyncio.sleep(max(0.0, down_at + OUTAGE_S - time.monotonic()))
        assert await first_seq(stack.nats.url, setup.doc_id) == purged_to, "purged while down"
        acked_while_down = len(load.ledger.ack_times)

        own_postgres.start()
        back_at = time.monotonic()
        await late.wait_synced("late", timeout_s=60)  # y-websocket retried by itself
        load_ok_s = time.monotonic() - back_at
        rest_errors_after_back = await wait_rest_ok(balancer.http_url, path_a, token, 30)
        rest_ok_s = time.monotonic() - back_at
        after = await wait_snapshot_past(url, setup.doc_id, before)

        # --- R10: restart while the snapshot job runs every second -----------------------
        own_postgres.stop()
        own_postgres.start()
        restarted_at = time.monotonic()
        restart_errors = await wait_rest_ok(balancer.http_url, path_a, token, 30)
        restart_ok_s = time.monotonic() - restarted_at
        await wait_snapshot_past(url, setup.doc_id, after)
        await load.wait_progress(acks=10, seen=20)
        assert all(node.running for node in nodes)
        await late.map_set("late", "b-edit", 1)
        await late.wait_json("late", {"map": {"b-edit": 1}}, roots={"map": "map"})
        result = await load.verify()
    figures = {
        "rest_503_during_outage_s": round(rest_s, 2),
        "acks_by_end_of_outage": acked_while_down,
        "new_doc_load_ok_after_back_s": round(load_ok_s, 2),
        "rest_ok_after_back_s": round(rest_ok_s, 2),
        "rest_errors_after_back": rest_errors_after_back,
        "restart_rest_ok_s": round(restart_ok_s, 2),
        "restart_rest_errors": restart_errors,
        "snapshot_seq": [before, after],
        **result,
    }
    print(json.dumps({"R6_R10": figures}))
