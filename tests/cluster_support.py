"""Several `collab serve` nodes behind the shipped nginx config, for the balancer and fault tests."""

from __future__ import annotations

import asyncio
import contextlib
import re
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import tornado.httpclient

from server.embedded import EmbeddedStack
from server.nats_cluster import EmbeddedNatsCluster
from server.settings import Settings
from tests.app_nodes import AppNode, node_env
from tests.balancer import Balancer

OPEN_SOCKETS = re.compile(r"^collab_open_websockets\{kind=\"[^\"]+\"\} (\S+)$", re.M)


def cluster_env(stack: EmbeddedStack, settings: Settings, cluster: EmbeddedNatsCluster) -> dict:
    """Node environment on the test stack's Postgres/Redis and the 3-server cluster at R3."""
    return node_env(
        stack.postgres.url(),
        cluster.url,
        stack.redis.url,
        settings.jwt_secret,
        COLLAB_STREAM_REPLICAS=str(len(cluster.members)),
    )


@contextlib.asynccontextmanager
async def balanced_nodes(
    env: dict[str, str], count: int, log_dir: Path
) -> AsyncIterator[tuple[list[AppNode], Balancer]]:
    """`count` app nodes (subprocesses) behind nginx; everything is stopped on exit, and the
    nodes' and nginx's log tails are printed if the body failed."""
    tag = uuid.uuid4().hex[:4]
    nodes = [AppNode(f"app{i + 1}-{tag}", env, log_dir) for i in range(count)]
    balancer: Balancer | None = None
    try:
        await asyncio.gather(*(node.start() for node in nodes))
        balancer = Balancer([node.port for node in nodes], log_dir).start()
        yield nodes, balancer
    except BaseException:
        for node in nodes:
            print(f"--- {node.name} (port {node.port}) ---\n{node.log_tail()}")
        if balancer is not None:
            print(f"--- nginx ---\n{balancer.error_log()[-3000:]}")
        raise
    finally:
        if balancer is not None:
            balancer.stop()
        for node in nodes:
            await node.aclose()


async def scrape(node: AppNode) -> str:
    response = await tornado.httpclient.AsyncHTTPClient().fetch(
        f"http://127.0.0.1:{node.port}/metrics", request_timeout=5
    )
    return response.body.decode()


async def open_sockets(node: AppNode) -> int:
    """The node's open WebSockets (`collab_open_websockets`, summed over kinds)."""
    return sum(int(float(n)) for n in OPEN_SOCKETS.findall(await scrape(node)))


def gauge(text: str, name: str) -> float:
    """An unlabelled gauge's value in a /metrics scrape."""
    match = re.search(rf"^{re.escape(name)} (\S+)$", text, re.M)
    assert match, f"{name} not in /metrics"
    return float(match.group(1))
