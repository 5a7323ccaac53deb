"""`python bench/replay_read.py`: what reading a long document log costs in one process.

A cold room with no snapshot reads its whole log through an ordered JetStream consumer
(`DocLog.read`); this publishes 25,000 signed entries (merged runs of 4 scattered one-character
inserts, like the late-joiner bench's fill) to a real nats-server, reads them back three times
(wall and CPU seconds), checks their signatures, and prints a cProfile of one more read
(bench/FINDINGS.md §6.6).
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import dataclasses
import pstats
import random
import tempfile
import time
import uuid
from pathlib import Path

import pycrdt

from bus.connection import NatsConnection
from bus.doc_log import DocLog, signing_key
from server.embedded import EmbeddedNats
from server.settings import Settings

#: Updates merged per log entry (the socket merges a run of queued keystrokes into one publish).
RUN = 4


def scattered_updates(count: int) -> list[bytes]:
    """`count` log entries, each a merged run of `RUN` one-character inserts at random places."""
    doc: pycrdt.Doc = pycrdt.Doc()
    text = doc.get("t", type=pycrdt.Text)
    updates: list[bytes] = []
    doc.observe(lambda event: updates.append(event.update))
    rnd = random.Random(1)
    for _ in range(count * RUN):
        text.insert(rnd.randint(0, len(text)), "a")
    return [pycrdt.merge_updates(*updates[i : i + RUN]) for i in range(0, len(updates), RUN)]


async def measure(entries: int) -> None:
    nats = EmbeddedNats(Path(tempfile.mkdtemp()) / "nats")
    nats.start()
    try:
        conn = NatsConnection(dataclasses.replace(Settings.from_env(), nats_url=nats.url))
        await conn.start()
        log = DocLog(conn, "bench", signing_key("bench-" * 6))
        doc_id = str(uuid.uuid4())
        started = time.monotonic()
        updates = scattered_updates(entries)  # slow: yrs integrates scattered inserts slowly
        print(f"made {entries} entries in {time.monotonic() - started:.1f} s")
        started = time.monotonic()
        await asyncio.gather(
            *(
                log.publish(doc_id, update, msg_id=f"m{i}", client="c", user="u", validated=True)
                for i, update in enumerate(updates)
            )
        )
        print(f"published them in {time.monotonic() - started:.2f} s")
        for _ in range(3):
            wall, cpu = time.perf_counter(), time.process_time()
            read = await log.read(doc_id, 0)
            print(
                f"read {len(read)}: {time.perf_counter() - wall:.3f} s wall, "
                f"{time.process_time() - cpu:.3f} s CPU"
            )
        wall = time.perf_counter()
        vouched = sum(1 for entry in read if log.vouched(doc_id, entry))
        print(f"signatures checked ({vouched} good): {time.perf_counter() - wall:.3f} s")
        profile = cProfile.Profile()
        profile.enable()
        await log.read(doc_id, 0)
        profile.disable()
        pstats.Stats(profile).sort_stats("tottime").print_stats(15)
        await conn.stop()
    finally:
        nats.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--entries", type=int, default=25_000)
    asyncio.run(measure(parser.parse_args().entries))


if __name__ == "__main__":
    main()
