"""R4: a 3-server JetStream cluster with R3 streams loses members mid-edit.

Stock Yjs clients and a JSON editor edit through nginx in front of two `collab serve` nodes that
know all three NATS URLs. The `COLLAB_DOCS` stream leader is SIGKILLed mid-edit (a new leader is
elected from the two followers; nodes connected to the dead server fail over), restarted and must
catch up; then a non-leader is SIGKILLed and restarted. Nothing acknowledged or seen by a peer is
lost (strong variant), everyone converges, and the measured figures are printed for the README:
leader kill → first acknowledged update, and the longest gap between acknowledgements.
"""

from __future__ import annotations

import itertools
import json
import time

import pytest

from bus.jetstream import DOCS_STREAM
from server.nats_cluster import EmbeddedNatsCluster
from tests.cluster_support import balanced_nodes, cluster_env
from tests.edit_load import EditLoad
from tests.realtime_support import document_with
from tests.test_nats_cluster import wait_replicas_current

pytestmark = [pytest.mark.faults, pytest.mark.timeout(400)]

# RELIABILITY R4: "publish failures never last > 5 s continuously". Asserted with a margin for a
# loaded 2-core CI machine (the measured figure is printed and quoted in the README).
LONGEST_ACK_GAP_LIMIT_S = 15.0


def longest_gap(times: list[float], start: float, end: float) -> float:
    """The longest time without an acknowledgement within [start, end]."""
    inside = [start, *(t for t in times if start <= t <= end), end]
    return max(b - a for a, b in itertools.pairwise(inside))


async def kill_and_restart(
    cluster: EmbeddedNatsCluster, name: str, load: EditLoad
) -> dict[str, float]:
    """SIGKILL member `name` mid-edit, wait for editing to go on without it, restart it and
    wait until it has caught up (both followers current again)."""
    member = cluster.member(name)
    killed_at = time.monotonic()
    member.kill()
    await load.wait_progress(acks=20, seen=40, timeout_s=60)
    first_ack = load.ledger.first_ack_after(killed_at)
    assert first_ack is not None
    member.start()
    restarted_at = time.monotonic()
    leader = await wait_replicas_current(cluster.url, DOCS_STREAM, timeout_s=60)
    caught_up_at = time.monotonic()
    await load.wait_progress(acks=10, seen=20, timeout_s=60)
    return {
        "first_ack_after_kill_s": round(first_ack - killed_at, 2),
        "longest_ack_gap_s": round(longest_gap(load.ledger.ack_times, killed_at, restarted_at), 2),
        "restart_caught_up_s": round(caught_up_at - restarted_at, 2),
        "leader_after": leader,  # type: ignore[dict-item]
    }


async def test_leader_then_follower_killed_mid_edit_lose_nothing(
    ctx, stack, settings, nats_cluster: EmbeddedNatsCluster, tmp_path
) -> None:
    setup = await document_with(ctx, "editor")
    token = setup.users["editor"].access_token
    env = cluster_env(stack, settings, nats_cluster)
    async with (
        balanced_nodes(env, 2, tmp_path) as (_nodes, balancer),
        EditLoad(balancer.port, setup.doc_id, token) as load,
    ):
        load.start_editing()
        await load.wait_progress(acks=20, seen=40)
        leader = await wait_replicas_current(nats_cluster.url, DOCS_STREAM)
        leader_kill = await kill_and_restart(nats_cluster, leader, load)
        follower = next(
            m.name for m in nats_cluster.members if m.name != leader_kill["leader_after"]
        )
        follower_kill = await kill_and_restart(nats_cluster, follower, load)
        result = await load.verify()
    figures = {"leader_kill": leader_kill, "follower_kill": follower_kill, **result}
    print(json.dumps({"R4": figures}))
    assert leader_kill["longest_ack_gap_s"] <= LONGEST_ACK_GAP_LIMIT_S, figures
    assert follower_kill["longest_ack_gap_s"] <= LONGEST_ACK_GAP_LIMIT_S, figures
