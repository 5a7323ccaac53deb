"""Soak: steady editing with room churn across app nodes on the 3-server cluster; is every node flat?

    python bench/soak.py                      # 30 minutes, 2 nodes, 24 clients over 40 documents
    python bench/soak.py --minutes 3 --sample-s 20 --output /tmp/soak.json   # a short look

Starts its own embedded stack with NATS as a local 3-server JetStream cluster (R3 streams), two
`collab serve` nodes behind nginx (the shipped config, tests/balancer.py) and stock Yjs clients in
one Node process (tests/yjs_client.py). Every client edits `--rate` times a second; every
`--churn-s` seconds `--churn` clients leave their document and open another one, so rooms keep
loading and unloading (unload grace 2 s). Every `--sample-s` each node's `/metrics` is sampled:
resident memory and open fds (prometheus_client's process collector), loaded rooms and live
asyncio tasks (`collab_open_rooms`, `collab_asyncio_tasks`), open sockets. At the end each node's
last sample is compared with the first one after warm-up (a third of the run): flat means RSS
within +10 % and tasks/fds within the churn's own noise. Not a CI test (RELIABILITY R17's shape for
a fleet); it ends by itself at its deadline.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import secrets
import sys
import tempfile
import time
import uuid
from pathlib import Path
from types import SimpleNamespace
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from models.db import Database
from models.migrate import migrate
from server.embedded import EmbeddedStack
from server.settings import Settings
from tests.app_nodes import AppNode, node_env
from tests.cluster_support import balanced_nodes, gauge, scrape
from tests.realtime_support import document_with
from tests.yjs_client import YjsNodeClients

RSS_FLAT_PERCENT = 10.0
TOKEN_TTL_S = 24 * 3600
SAMPLED = {
    "rss_mb": "process_resident_memory_bytes",
    "fds": "process_open_fds",
    "rooms": "collab_open_rooms",
    "tasks": "collab_asyncio_tasks",
}


async def sample(nodes: list[AppNode], started: float) -> dict[str, Any]:
    row: dict[str, Any] = {"t_s": round(time.monotonic() - started)}
    for node in nodes:
        text = await scrape(node)
        values = {key: gauge(text, metric) for key, metric in SAMPLED.items()}
        values["rss_mb"] = round(values["rss_mb"] / 2**20, 1)
        row[node.name] = {k: (v if k == "rss_mb" else int(v)) for k, v in values.items()}
    print(json.dumps(row), flush=True)
    return row


def verdict(samples: list[dict[str, Any]], names: list[str]) -> dict[str, Any]:
    base = samples[len(samples) // 3]
    last = samples[-1]
    result = {}
    for name in names:
        growth = 100.0 * (last[name]["rss_mb"] - base[name]["rss_mb"]) / base[name]["rss_mb"]
        result[name] = {
            "rss_growth_percent": round(growth, 1),
            "tasks": [base[name]["tasks"], last[name]["tasks"]],
            "fds": [base[name]["fds"], last[name]["fds"]],
            "rss_flat": growth <= RSS_FLAT_PERCENT,
        }
    return result


async def make_documents(url: str, jwt_secret: str, count: int) -> tuple[list[str], str]:
    db = Database(url, min_size=1, max_size=2, command_timeout_s=10)
    await db.start()
    try:
        # Tokens outlive the run: an expired one would end every socket midway (4401).
        settings = Settings(jwt_secret=jwt_secret, access_token_ttl_s=TOKEN_TTL_S)
        data = SimpleNamespace(db=db, settings=settings)
        setup = await document_with(data, "editor")  # type: ignore[arg-type]
        docs = [setup.doc_id]
        for _ in range(count - 1):
            docs.append(
                str(
                    await db.fetchval(
                        "INSERT INTO documents (workspace_id, title, created_by)"
                        " VALUES ($1, 'Soak', $2) RETURNING id",
                        setup.workspace_id,
                        setup.users["owner"].id,
                    )
                )
            )
        return docs, setup.users["editor"].access_token
    finally:
        await db.stop()


async def soak(args: argparse.Namespace, stack: EmbeddedStack, log_dir: Path) -> dict[str, Any]:
    jwt_secret = secrets.token_urlsafe(48)
    docs, token = await make_documents(stack.postgres.url(), jwt_secret, args.docs)
    env = node_env(
        stack.postgres.url(),
        stack.nats.url,
        stack.redis.url,
        jwt_secret,
        COLLAB_STREAM_REPLICAS="3",
        COLLAB_ROOM_UNLOAD_GRACE_S="2",
        COLLAB_LOG_LEVEL="WARNING",
    )
    rng = random.Random(7)
    samples: list[dict[str, Any]] = []
    async with (
        balanced_nodes(env, args.nodes, log_dir) as (nodes, balancer),
        YjsNodeClients() as clients,
    ):
        names = [f"c{i}" for i in range(args.clients)]
        for i, name in enumerate(names):
            await clients.connect(name, balancer.ws_url, docs[i % len(docs)], token)
        started = time.monotonic()
        deadline = started + args.minutes * 60
        next_sample, next_churn, edits = started, started + args.churn_s, 0
        while (now := time.monotonic()) < deadline:
            if now >= next_sample:
                samples.append(await sample(nodes, started))
                next_sample += args.sample_s
            if now >= next_churn:
                for name in rng.sample(names, args.churn):
                    await clients.destroy(name)
                    await clients.connect(name, balancer.ws_url, rng.choice(docs), token)
                next_churn += args.churn_s
            for name in names:
                await clients.map_set(name, f"k{edits % 64}", edits)
                edits += 1
            await asyncio.sleep(1.0 / args.rate)
        samples.append(await sample(nodes, started))
        node_names = [node.name for node in nodes]
    return {
        "args": vars(args),
        "edits": edits,
        "samples": samples,
        "verdict": verdict(samples, node_names),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=30.0)
    parser.add_argument("--nodes", type=int, default=2)
    parser.add_argument("--docs", type=int, default=40)
    parser.add_argument("--clients", type=int, default=24)
    parser.add_argument("--rate", type=float, default=2.0, help="edits per second per client")
    parser.add_argument("--churn", type=int, default=4, help="clients moved per churn tick")
    parser.add_argument("--churn-s", type=float, default=10.0)
    parser.add_argument("--sample-s", type=float, default=60.0)
    parser.add_argument("--output", default="bench/results/soak.json")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix=f"collab-soak-{uuid.uuid4().hex[:4]}-") as tmp:
        stack = EmbeddedStack(Path(tmp) / "stack", fast_unsafe=True, nats_servers=3).start()
        try:
            migrate(stack.postgres.url())
            report = asyncio.run(soak(args, stack, Path(tmp)))
        finally:
            stack.stop()
    Path(args.output).write_text(json.dumps(report, indent=2) + "\n")
    print(json.dumps(report["verdict"], indent=2))
    return 0 if all(v["rss_flat"] for v in report["verdict"].values()) else 1


if __name__ == "__main__":
    sys.exit(main())
