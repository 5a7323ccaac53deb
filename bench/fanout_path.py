"""CPU per delivery of the document fan-out path in one process, through the real classes.

`python bench/fanout_path.py [--peers 20] [--updates 2000]`: a room with PEERS y-websocket sessions
(each on a transport that only counts bytes) applies UPDATES log entries, one per event-loop turn
as the ordered consumer delivers them; each one is fanned out to every peer (room → session → the
socket hub's `Connection.send` with its slow-reader check → transport). Reported: process CPU
microseconds per delivery (median of `--repeat` runs), which a busy machine disturbs far less
than the end-to-end benchmark (bench/run.py), so it can compare two commits of the code on the
same box: run it from an export of each (`git archive <commit>`); it also runs on the layout
before the socket hub (`streams/`), so the refactor can be measured against its parent.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import pycrdt

from server.settings import Settings
from services.policy import Access, ResourceRole, WorkspaceRole

try:  # the socket hub's layout (live/, bus/)
    from bus.doc_log import DocLog, LogEntry
    from live.hub import Identity
    from live.room import Room
    from live.session import SessionDeps, YjsSession

    def apply(room: Any, entry: LogEntry) -> None:
        room.follower.apply(entry)

    def offline_log() -> Any:
        """A log with no NATS behind it: the follower only asks it whether an entry is signed."""
        return DocLog(None, "micro")  # type: ignore[arg-type]

except ImportError:  # the layout before it (streams/)
    from streams.doc_log import LogEntry  # type: ignore[no-redef]
    from streams.room import Room  # type: ignore[no-redef]
    from streams.session import Identity, SessionDeps, YjsSession  # type: ignore[no-redef]

    def apply(room: Any, entry: LogEntry) -> None:
        room._apply_entry(entry)

    def offline_log() -> Any:
        return None


class CountingTransport:
    """A socket that takes every frame at once: only the server's own path is measured."""

    def __init__(self) -> None:
        self.bytes = 0

    def send(self, frame: bytes | str) -> None:
        self.bytes += len(frame)

    def unsent_bytes(self) -> int:
        return 0

    def close(self, code: int, reason: str) -> None:
        raise AssertionError(f"closed {code} {reason}")


def typing_updates(n: int) -> list[bytes]:
    doc = pycrdt.Doc()
    text = doc.get("text", type=pycrdt.Text)
    updates = []
    for i in range(n):
        before = doc.get_state()
        text.insert(len(str(text)), chr(97 + i % 26))
        updates.append(doc.get_update(before))
    return updates


async def run_once(peers: int, updates: list[bytes]) -> float:
    settings = Settings(node_id="micro")
    room = Room(
        "micro",
        db=None,  # type: ignore[arg-type]
        doc_log=offline_log(),
        nats_conn=None,  # type: ignore[arg-type]
        settings=settings,
        on_empty=lambda _room: None,
    )
    deps = SessionDeps(rooms=None, db=None, doc_log=None, settings=settings)  # type: ignore[arg-type]
    access = Access("w", WorkspaceRole.MEMBER, ResourceRole.EDITOR)
    identity = Identity("u", "U", "f", "t", 2**40)
    transports = [CountingTransport() for _ in range(peers)]
    for index, transport in enumerate(transports):
        session = YjsSession(
            conn_id=f"c{index}",
            doc_id="micro",
            identity=identity,
            access=access,
            transport=transport,
            deps=deps,
        )
        room.join(session)
    start = time.process_time()
    for seq, update in enumerate(updates, start=1):
        apply(room, LogEntry(seq=seq, update=update, client="x", node="elsewhere"))
        await asyncio.sleep(0)  # the flush: one per loop turn, as the consumer delivers
    await asyncio.sleep(0)
    elapsed = time.process_time() - start
    assert all(t.bytes for t in transports)
    return elapsed / (len(updates) * peers) * 1e6


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--peers", type=int, default=20)
    parser.add_argument("--updates", type=int, default=2000)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args(argv)
    updates = typing_updates(args.updates)
    runs = [asyncio.run(run_once(args.peers, updates)) for _ in range(args.repeat)]
    print(
        f"fan-out path: {statistics.median(runs):.2f} us CPU per delivery "
        f"(median of {args.repeat}; runs {', '.join(f'{r:.2f}' for r in runs)}; "
        f"{args.peers} peers x {args.updates} updates)"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
