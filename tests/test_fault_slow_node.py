"""R20: a node too slow to keep up with its consumers — SIGSTOPped mid-edit for longer than any of
its limits allow, then continued — recovers its room without a gap or a duplicate.

Two `collab serve` nodes behind nginx; the load edits through the balancer. Node 1 is frozen for
35 s: far past its ordered consumer's idle heartbeat (2 s, after two misses nats-py recreates the
consumer from the last delivered sequence), the room's own stall detector (5 s) and y-websocket's
30 s "no message" reconnect. Meanwhile node 2 keeps serving. A JSON observer connected straight to
node 1 is the gap/duplicate oracle: after node 1 continues, it must receive every version the
document got in the stream, each exactly once, in order; and a fresh client served by node 1's
room must equal one served by node 2.
"""

from __future__ import annotations

import asyncio
import json
import signal
import time

import pytest

from tests.app_nodes import node_env
from tests.cluster_support import balanced_nodes
from tests.edit_load import ROOTS, EditLoad
from tests.realtime_support import RawSocket, document_with
from tests.yjs_client import YjsNodeClients

pytestmark = [pytest.mark.faults, pytest.mark.timeout(300)]

STOPPED_S = 35.0
CATCH_UP_TIMEOUT_S = 60.0
NODE_ENV = {
    # No snapshots (and so no purges) while the oracle compares against the whole stream.
    "COLLAB_SCHEDULER_ENABLED": "false",
    # Server pings would close the oracle's socket right after SIGCONT; it must stay to count.
    "COLLAB_WS_PING_INTERVAL_S": "600",
}


def versions(socket: RawSocket, after: int) -> list[int]:
    return [
        m["version"]
        for m in socket.json_messages()
        if m.get("type") == "operation" and m["version"] > after
    ]


async def fresh_state(port: int, doc_id: str, token: str, target: dict[int, int]) -> dict:
    async with YjsNodeClients() as fresh:
        await fresh.connect("fresh", f"ws://127.0.0.1:{port}/ws/documents", doc_id, token)
        await fresh.wait_synced("fresh", 30)
        return await fresh.wait_state_vector("fresh", target, CATCH_UP_TIMEOUT_S, ROOTS)


async def test_node_stopped_past_its_consumer_limits_recovers_without_gap_or_duplicate(
    ctx, stack, settings, tmp_path
) -> None:
    setup = await document_with(ctx, "editor")
    token = setup.users["editor"].access_token
    doc_log = ctx.doc_log
    env = node_env(stack.postgres.url(), stack.nats.url, stack.redis.url, settings.jwt_secret)
    async with (
        balanced_nodes({**env, **NODE_ENV}, 2, tmp_path) as (nodes, balancer),
        EditLoad(balancer.port, setup.doc_id, token) as load,
    ):
        slow, other = nodes
        oracle = await RawSocket.json(slow.port, setup.doc_id, token)
        synced_at = (await oracle.wait_type("sync"))["version"]
        load.start_editing()
        await load.wait_progress(acks=20, seen=40)

        slow.signal(signal.SIGSTOP)
        # The fault's duration (nothing to wait on: clients of the frozen node are frozen too,
        # and nginx keeps sending some new connections there — it has no active health check).
        await asyncio.sleep(STOPPED_S)
        slow.signal(signal.SIGCONT)
        continued_at = time.monotonic()
        await load.wait_progress(acks=20, seen=40, timeout_s=CATCH_UP_TIMEOUT_S)
        await load.stop_editing()

        last = await doc_log.last_seq(setup.doc_id)
        await oracle.wait_json(
            lambda m: m.get("type") == "operation" and m["version"] >= last,
            timeout_s=CATCH_UP_TIMEOUT_S,
        )
        caught_up_s = time.monotonic() - continued_at
        expected = [e.seq for e in await doc_log.read(setup.doc_id, synced_at)]
        got = versions(oracle, synced_at)
        assert len(got) == len(set(got)), "a version was delivered twice"
        assert got == expected, f"gap: {sorted(set(expected) - set(got))[:10]}"
        await oracle.aclose()

        observer = await load.observers.state("observer", ROOTS)
        target = {int(c): k for c, k in observer["state_vector_map"].items()}
        from_slow = await fresh_state(slow.port, setup.doc_id, token, target)
        from_other = await fresh_state(other.port, setup.doc_id, token, target)
        assert from_slow["state_hash"] == from_other["state_hash"]
        result = await load.verify()
    figures = {
        "stopped_s": STOPPED_S,
        "versions_checked": len(expected),
        "oracle_caught_up_after_continue_s": round(caught_up_s, 2),
        **result,
    }
    print(json.dumps({"R20": figures}))
