"""R2/R3: the (single) nats-server is SIGKILLed for real — not a proxy cut — and restarted.

Two `collab serve` nodes behind nginx, stock Yjs clients and a JSON editor editing through it, on a
nats-server of this module's own (file storage, the default `sync_interval`), so the shared test
server is never touched:

* R2: killed mid-edit, restarted after 2 s: no acknowledged update is lost (a killed process keeps
  what it acknowledged), nothing is acknowledged while it is down, editing resumes by itself;
* R3: down for 150 s — longer than nats-py's default reconnect budget (60 × 2 s): every operation
  is refused with `service_unavailable` (never acked), `/readyz` is 503 on every node, the nodes
  stay up, and once the server is back they reconnect by themselves and editing resumes.

Measured figures (NATS back → first acknowledged update; → `/readyz` 200) are printed for the
README.
"""

from __future__ import annotations

import asyncio
import json
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from bus.doc_log import PUBLISH_DEADLINE_S
from server.embedded import EmbeddedNats
from tests.app_nodes import AppNode, node_env
from tests.cluster_support import balanced_nodes
from tests.edit_load import EditLoad
from tests.realtime_support import document_with

pytestmark = [pytest.mark.faults, pytest.mark.timeout(480)]

SHORT_OUTAGE_S = 2.0
LONG_OUTAGE_S = 150.0
READY_POLL_S = 0.25


@pytest.fixture(scope="module")
def own_nats() -> Iterator[EmbeddedNats]:
    with tempfile.TemporaryDirectory(prefix="collab-nats-outage-") as tmp:
        server = EmbeddedNats(Path(tmp))
        server.start()
        try:
            yield server
        finally:
            server.stop()


async def wait_all_ready(nodes: list[AppNode], want: int, timeout_s: float) -> float:
    """Until every node's /readyz answers `want`; returns when that happened (monotonic)."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        codes = await asyncio.gather(*(n.readyz_status() for n in nodes))
        if all(code == want for code in codes):
            return time.monotonic()
        await asyncio.sleep(READY_POLL_S)
    raise AssertionError(f"/readyz never all {want}: {codes}")


async def outage(
    own_nats: EmbeddedNats, nodes: list[AppNode], load: EditLoad, down_s: float
) -> dict[str, float]:
    """Kill nats-server mid-edit, keep it down `down_s`, restart it; check and measure."""
    own_nats.kill()  # returns once the process is reaped: nothing sent after this is stored
    killed_at = time.monotonic()
    readyz_false_at = await wait_all_ready(nodes, 503, timeout_s=min(down_s, 30) + 10)
    await asyncio.sleep(max(0.0, killed_at + down_s - time.monotonic()))
    assert all(node.running for node in nodes), "a node exited during the NATS outage"
    refused = load.ledger.refusals["service_unavailable"]
    acked_while_down = load.ledger.acked_if_sent_between(killed_at, time.monotonic())
    own_nats.start()
    back_at = time.monotonic()
    ready_at = await wait_all_ready(nodes, 200, timeout_s=60)
    await load.wait_progress(acks=10, seen=20, timeout_s=90)
    first_ack = load.ledger.first_ack_after(back_at)
    assert first_ack is not None
    assert acked_while_down == 0, "acknowledged while JetStream was down"
    if down_s > PUBLISH_DEADLINE_S:  # a shorter outage is ridden out by the retries
        assert refused >= 1, load.ledger.refusals
    return {
        "down_s": round(back_at - killed_at, 1),
        "readyz_false_after_kill_s": round(readyz_false_at - killed_at, 2),
        "refused_while_down": refused,
        "readyz_true_after_restart_s": round(ready_at - back_at, 2),
        "first_ack_after_restart_s": round(first_ack - back_at, 2),
    }


async def run_outage(ctx, stack, settings, own_nats, tmp_path, down_s: float) -> dict:
    setup = await document_with(ctx, "editor")
    token = setup.users["editor"].access_token
    env = node_env(stack.postgres.url(), own_nats.url, stack.redis.url, settings.jwt_secret)
    async with (
        balanced_nodes(env, 2, tmp_path) as (nodes, balancer),
        EditLoad(balancer.port, setup.doc_id, token) as load,
    ):
        load.start_editing()
        await load.wait_progress(acks=20, seen=40)
        pids = [node.pid for node in nodes]
        figures = await outage(own_nats, nodes, load, down_s)
        assert [node.pid for node in nodes] == pids  # reconnected by themselves, no restart
        result = await load.verify()
    return {**figures, **result}


async def test_nats_server_killed_and_restarted_loses_no_acked_update(
    ctx, stack, settings, own_nats, tmp_path
) -> None:
    figures = await run_outage(ctx, stack, settings, own_nats, tmp_path, SHORT_OUTAGE_S)
    print(json.dumps({"R2": figures}))


async def test_nats_down_150_s_refuses_edits_then_resumes_by_itself(
    ctx, stack, settings, own_nats, tmp_path
) -> None:
    figures = await run_outage(ctx, stack, settings, own_nats, tmp_path, LONG_OUTAGE_S)
    print(json.dumps({"R3": figures}))
