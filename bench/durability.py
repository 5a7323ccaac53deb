"""What each JetStream durability mode costs a document update's publish (README "Durability").

Modes: one nats-server with `sync_interval` 2m (the nats default: fsync every 2 minutes) or
`always` (fsync before every PubAck), and a 3-server cluster with R3 streams (a PubAck waits for a
quorum of 2 servers to store it) with either sync setting. Each mode gets fresh servers in a temp
dir on loopback, the app's own stream definition (`bus/jetstream.py`) and the app's publish path
(`bus/doc_log.DocLog.publish`: headers, msg id, retry loop):

* **sequential**: one publish at a time, as one socket's updates are published (latency p50/p99);
* **concurrent**: `--concurrency` publishes in flight, as many sockets on a node (throughput).

    python bench/durability.py                  # 2,000 sequential + 4,000 concurrent per mode
    python bench/durability.py --count 500 --output bench/results/durability.json

Loopback on one machine: replication costs no network latency here, and all servers share the
same disk, so `always` in R3 fsyncs three times on one device (an upper bound of its cost).
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import pycrdt

from bus.connection import NatsConnection
from bus.doc_log import DocLog
from server.embedded import EmbeddedNats
from server.nats_cluster import EmbeddedNatsCluster
from server.settings import Settings

MODES: dict[str, tuple[int, str]] = {
    "R1, sync_interval 2m (default)": (1, "2m"),
    "R1, sync_interval always": (1, "always"),
    "R3, sync_interval 2m": (3, "2m"),
    "R3, sync_interval always": (3, "always"),
}
DOCS = 20


def keystroke_updates(count: int) -> list[bytes]:
    """Realistic small Yjs updates: one character typed at a time (~25–40 bytes each)."""
    doc = pycrdt.Doc()
    text = doc.get("text", type=pycrdt.Text)
    updates = []
    for i in range(count):
        before = doc.get_state()
        text.insert(len(text), chr(97 + i % 26))
        updates.append(doc.get_update(before))
    return updates


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


async def measure(url: str, replicas: int, count: int, concurrency: int) -> dict[str, Any]:
    settings = dataclasses.replace(Settings(), nats_url=url, stream_replicas=replicas)
    conn = NatsConnection(settings)
    await conn.start()
    log = DocLog(conn, "bench")
    updates = keystroke_updates(count + count * 2)
    try:
        latencies = []
        for i in range(count):
            started = time.perf_counter()
            await log.publish(f"d{i % DOCS}", updates[i], msg_id=f"s{i}", client="c", user="u")
            latencies.append((time.perf_counter() - started) * 1000)
        rest = updates[count:]
        queue = list(enumerate(rest))

        async def worker() -> None:
            while queue:
                i, update = queue.pop()
                await log.publish(f"d{i % DOCS}", update, msg_id=f"c{i}", client="c", user="u")

        started = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        elapsed = time.perf_counter() - started
    finally:
        await conn.stop()
    return {
        "sequential_p50_ms": round(statistics.median(latencies), 3),
        "sequential_p99_ms": round(percentile(latencies, 0.99), 3),
        "sequential_per_s": round(count / (sum(latencies) / 1000), 1),
        "concurrent_per_s": round(len(rest) / elapsed, 1),
    }


def start_servers(tmp: Path, servers: int, sync: str) -> EmbeddedNats | EmbeddedNatsCluster:
    if servers == 1:
        single = EmbeddedNats(tmp, sync_interval=sync)
        single.start()
        return single
    return EmbeddedNatsCluster(tmp, servers, sync).start()


def run_mode(servers: int, sync: str, count: int, concurrency: int) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="collab-durability-") as tmp:
        nats = start_servers(Path(tmp), servers, sync)
        try:
            return asyncio.run(measure(nats.url, servers, count, concurrency))
        finally:
            nats.stop()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=2000, help="sequential publishes per mode")
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--output", default="bench/results/durability.json")
    args = parser.parse_args()
    results = {}
    for name, (servers, sync) in MODES.items():
        results[name] = run_mode(servers, sync, args.count, args.concurrency)
        print(f"{name:32} {results[name]}", flush=True)
    report = {
        "count": args.count,
        "concurrency": args.concurrency,
        "load_average": os.getloadavg(),
        "cpus": os.cpu_count(),
        "results": results,
    }
    Path(args.output).write_text(json.dumps(report, indent=2) + "\n")
    print("| mode | sequential p50 ms | p99 ms | sequential /s | concurrent /s |")
    print("| --- | --- | --- | --- | --- |")
    for name, r in results.items():
        print(
            f"| {name} | {r['sequential_p50_ms']} | {r['sequential_p99_ms']} |"
            f" {r['sequential_per_s']} | {r['concurrent_per_s']} |"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
