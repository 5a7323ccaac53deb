"""`python bench/publish_confirm.py`: what confirming an update by its echo saves per edit.

A room follows its document's subject with an ordered consumer, so every update it publishes comes
back to it. This publishes `--updates` keystroke-sized signed updates one at a time, as a socket's
worker does, against a real nats-server, two ways, alternating `--rounds` times:

* `puback`: `DocLog.publish` (a JetStream request: inbox, future, timer, the PubAck parsed as
  JSON), then the update's own message coming back;
* `echo`: `DocLog.send` (a plain publish to the stream's subject, no reply), then the update's own
  message coming back — what `Room.publish(confirm_by_echo=True)` waits for.

Prints this process's CPU and nats-server's CPU per update (bench/FINDINGS.md §6.7).
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path

import uvloop

if __package__ in (None, ""):  # `python bench/publish_confirm.py`: make the repo importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench import procstat
from bus.connection import NatsConnection
from bus.doc_log import DocLog, LogEntry, signing_key
from server.embedded import EmbeddedNats
from server.settings import Settings

#: A one-character insert as a stock Yjs client sends it (the bytes do not matter to NATS).
UPDATE = bytes.fromhex("01019fd3c5a50b00840c01310161") + bytes(16)


async def one_round(
    log: DocLog, nats_pid: int, doc_id: str, mode: str, count: int, tag: str
) -> tuple[float, ...]:
    """CPU µs per update of (this process, nats-server), and wall µs per update."""
    loop = asyncio.get_running_loop()
    waiting: dict[str, asyncio.Future[int]] = {}

    def on_entry(entry: LogEntry) -> None:
        future = waiting.pop(entry.msg_id or "", None)
        if future is not None:
            future.set_result(entry.seq)

    sub = await log.subscribe(doc_id, await log.last_seq(doc_id), on_entry)
    await asyncio.sleep(0.2)
    cpu, nats_cpu, wall = time.process_time(), procstat.cpu_seconds(nats_pid), time.monotonic()
    for i in range(count):
        msg_id = f"{tag}-{i}"
        future = loop.create_future()
        waiting[msg_id] = future
        if mode == "puback":
            await log.publish(doc_id, UPDATE, msg_id=msg_id, client="c", user="u", validated=True)
        else:
            await log.send(doc_id, UPDATE, msg_id=msg_id, client="c", user="u", validated=True)
        await future
    cpu = time.process_time() - cpu
    nats_cpu = procstat.cpu_seconds(nats_pid) - nats_cpu
    wall = time.monotonic() - wall
    await sub.stop()
    return tuple(round(1e6 * value / count, 1) for value in (cpu, nats_cpu, wall))


async def measure(count: int, rounds: int) -> None:
    nats = EmbeddedNats(Path(tempfile.mkdtemp()) / "nats")
    nats.start()
    try:
        assert nats.process is not None
        settings = dataclasses.replace(Settings.from_env(), nats_url=nats.url)
        conn = NatsConnection(settings)
        await conn.start()
        log = DocLog(conn, "bench", signing_key("bench-" * 6))
        doc_id = str(uuid.uuid4())
        results: dict[str, list[tuple[float, ...]]] = {"puback": [], "echo": []}
        for r in range(rounds):
            for mode in results:
                row = await one_round(log, nats.process.proc.pid, doc_id, mode, count, f"{mode}{r}")
                results[mode].append(row)
                print(
                    f"round {r + 1} {mode:6s} µs per update: process {row[0]:6.1f}  "
                    f"nats-server {row[1]:6.1f}  wall {row[2]:6.1f}"
                )
        print(f"\nmedians of {rounds} rounds of {count} updates:")
        for mode, rows in results.items():
            process, server, wall = (
                statistics.median(column) for column in zip(*rows, strict=True)
            )
            print(
                f"{mode:6s} process {process:6.1f} µs  nats-server {server:6.1f} µs  "
                f"both {process + server:6.1f} µs  wall {wall:6.1f} µs"
            )
        await conn.stop()
    finally:
        nats.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--updates", type=int, default=5000)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    uvloop.run(measure(args.updates, args.rounds))


if __name__ == "__main__":
    main()
