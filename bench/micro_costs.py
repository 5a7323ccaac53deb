"""CPU cost per operation of each stage of our update path, measured in isolation.

    python bench/micro_costs.py [--n 5000]     # writes bench/results/micro_costs.json too

py-spy samples wall time of a runnable thread, so on a shared 2-core box it also counts time spent
waiting for the CPU; these figures are CPU time (`time.process_time`, and `/proc` for nats-server)
divided by the number of operations, with the project's own code where it exists:

* inbound:  decode_message + validate_update + the sha256 message id, per y-websocket update frame
* apply:    the room's apply path for one log entry (validation, merged-update tail, flush)
* publish:  DocLog.publish (JetStream publish, wait for the PubAck), 1 and 32 in flight
* consume:  DocLog.subscribe (ordered push consumer) → LogEntry, per message
* fan-out:  one frame to each of M Tornado WebSockets (a Node sink reads them): write_message as
            handlers/ws_documents.py calls it, vs the frame written without Tornado's per-message Task,
            vs the wire frame built once and sent to the socket directly (IOStream only for a
            short write)
Frames are the bench's: a writer appending "<seq>;" to a Y.Text (pycrdt produces the same v1 bytes).
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import json
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import pycrdt
import tornado.web
import tornado.websocket

from bench import procstat
from bench.servers import BENCH_DIR, child_preexec, node_binary
from bus.connection import NatsConnection
from bus.doc_log import DocLog, LogEntry
from live.protocol import decode_message, encode_update, validate_update
from live.room import Room
from server.embedded import EmbeddedNats, free_port
from server.settings import Settings

FANOUT_CONNECTIONS = 100
FANOUT_ROUNDS = 200
SINK_TIMEOUT_S = 60.0


def typing_updates(count: int) -> list[bytes]:
    """Incremental updates of one writer appending small markers, as the bench's clients do."""
    doc = pycrdt.Doc()
    text = doc.get("text", type=pycrdt.Text)
    updates = []
    for seq in range(count):
        before = doc.get_state()
        text += f"{seq};"
        updates.append(doc.get_update(before))
    return updates


def per_op_us(run: Callable[[], int]) -> float:
    start = time.process_time()
    ops = run()
    return round((time.process_time() - start) / ops * 1e6, 2)


def bench_inbound(frames: list[bytes]) -> float:
    def run() -> int:
        for frame in frames:
            message = decode_message(frame)
            validate_update(message.update)  # type: ignore[union-attr]
            hashlib.sha256(message.update).hexdigest()  # type: ignore[union-attr]
        return len(frames)

    return per_op_us(run)


async def bench_apply(updates: list[bytes]) -> float:
    """The room's own apply path (`LogFollower.apply`: validation, then the room's merged-update
    tail and flush scheduling) on a room with no peers; backing services are not touched by it."""
    room = Room(
        "micro",
        db=None,  # type: ignore[arg-type]
        doc_log=DocLog(None, "micro"),  # type: ignore[arg-type]  # asked only about signatures
        nats_conn=None,  # type: ignore[arg-type]
        settings=Settings(node_id="micro"),
        on_empty=lambda _room: None,
    )
    start = time.process_time()
    for seq, update in enumerate(updates, start=1):
        room.follower.apply(LogEntry(seq=seq, update=update, client="c", node="micro"))
        await asyncio.sleep(0)  # let the scheduled flush run, one update per loop turn
    room.full_state()
    return round((time.process_time() - start) / len(updates) * 1e6, 2)


async def bench_publish(doc_log: DocLog, updates: list[bytes], in_flight: int, nats_pid: int):
    doc_id = f"micro-{in_flight}-{time.monotonic_ns()}"
    queue = list(enumerate(updates))

    async def worker() -> None:
        while queue:
            index, update = queue.pop()
            await doc_log.publish(doc_id, update, msg_id=f"{doc_id}-{index}", client="c", user="u")

    nats_before, ours_before = procstat.cpu_seconds(nats_pid), time.process_time()
    wall = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(in_flight)))
    wall = time.perf_counter() - wall
    n = len(updates)
    return doc_id, {
        "ours_us": round((time.process_time() - ours_before) / n * 1e6, 2),
        "nats_server_us": round((procstat.cpu_seconds(nats_pid) - nats_before) / n * 1e6, 2),
        "per_s": round(n / wall),
    }


async def bench_consume(doc_log: DocLog, doc_id: str, n: int, nats_pid: int) -> dict[str, float]:
    done = asyncio.Event()
    seen = 0

    def on_entry(_entry: Any) -> None:
        nonlocal seen
        seen += 1
        if seen >= n:
            done.set()

    nats_before, ours_before = procstat.cpu_seconds(nats_pid), time.process_time()
    sub = await doc_log.subscribe(doc_id, 0, on_entry)
    await asyncio.wait_for(done.wait(), 60)
    result = {
        "ours_us": round((time.process_time() - ours_before) / n * 1e6, 2),
        "nats_server_us": round((procstat.cpu_seconds(nats_pid) - nats_before) / n * 1e6, 2),
    }
    await sub.stop()
    return result


# --- fan-out ---------------------------------------------------------------------------------------

SINK_JS = """
import WebSocket from 'ws'
const [url, conns, expected] = [process.argv[2], Number(process.argv[3]), Number(process.argv[4])]
let got = 0, open = 0
for (let i = 0; i < conns; i++) {
  const ws = new WebSocket(url)
  ws.on('open', () => { if (++open === conns) console.log('open') })
  ws.on('message', () => { if (++got === expected) { console.log('done'); process.exit(0) } })
}
"""


class Sockets(tornado.websocket.WebSocketHandler):
    def initialize(self, registry: list[Sockets]) -> None:
        self.registry = registry

    def open(self) -> None:
        self.set_nodelay(True)
        self.registry.append(self)


def send_like_handler(socket: Sockets, frame: bytes) -> None:
    """What handlers/ws_documents.py `send` does per frame (pending-bytes accounting included)."""
    future = socket.write_message(frame, binary=True)
    future.add_done_callback(lambda done: done.cancelled() or done.exception())


def send_frame_direct(socket: Sockets, frame: bytes) -> None:
    """The same frame through the protocol's frame writer: no wrapper coroutine, no Task."""
    socket.ws_connection._write_frame(True, 0x2, frame)  # type: ignore[union-attr]


def wire_frame(payload: bytes) -> bytes:
    """A final binary frame as a server sends it (unmasked, so identical for every peer)."""
    length = len(payload)
    if length < 126:
        header = bytes([0x82, length])
    elif length < 1 << 16:
        header = bytes([0x82, 126]) + length.to_bytes(2, "big")
    else:
        header = bytes([0x82, 127]) + length.to_bytes(8, "big")
    return header + payload


def send_prebuilt_to_socket(socket: Sockets, frame: bytes) -> None:
    """The frame encoded once for all peers and handed to the kernel directly while the stream
    has nothing queued (no Future, no callback); only a short write goes through the IOStream."""
    stream = socket.ws_connection.stream  # type: ignore[union-attr]
    if not stream._write_buffer:
        try:
            sent = stream.socket.send(frame)
        except BlockingIOError:
            sent = 0
        if sent == len(frame):
            return
        frame = frame[sent:]
    stream.write(frame)


async def bench_fanout(frame: bytes, send: Callable[[Sockets, bytes], None], sink_cpus) -> float:
    registry: list[Sockets] = []
    app = tornado.web.Application([(r"/", Sockets, {"registry": registry})])
    port = free_port()
    server = app.listen(port, "127.0.0.1")
    expected = FANOUT_CONNECTIONS * FANOUT_ROUNDS
    with tempfile.NamedTemporaryFile("w", suffix=".mjs", dir=BENCH_DIR, delete=False) as script:
        script.write(SINK_JS)
    sink = await asyncio.create_subprocess_exec(
        node_binary(),
        script.name,
        f"ws://127.0.0.1:{port}/",
        str(FANOUT_CONNECTIONS),
        str(expected),
        stdout=subprocess.PIPE,
        preexec_fn=child_preexec(sink_cpus),
    )
    try:
        assert sink.stdout is not None
        await asyncio.wait_for(sink.stdout.readline(), SINK_TIMEOUT_S)  # "open"
        start = time.process_time()
        for _ in range(FANOUT_ROUNDS):
            for socket in registry:
                send(socket, frame)
            await asyncio.sleep(0)  # one event-loop turn per round, as a room flush is
        await asyncio.wait_for(sink.stdout.readline(), SINK_TIMEOUT_S)  # "done"
        return round((time.process_time() - start) / expected * 1e6, 2)
    finally:
        if sink.returncode is None:
            sink.kill()
        await sink.wait()
        server.stop()
        Path(script.name).unlink()  # noqa: ASYNC240 (a bench: a blocking unlink is fine here)


async def main_async(n: int) -> dict[str, Any]:
    updates = typing_updates(n)
    frames = [encode_update(u) for u in updates]
    results: dict[str, Any] = {
        "inbound_us": bench_inbound(frames),
        "apply_us": await bench_apply(updates),
    }
    split = procstat.server_and_client_cpus()
    sink_cpus = split[1] if split else None
    results["fanout_write_message_us"] = await bench_fanout(frames[0], send_like_handler, sink_cpus)
    results["fanout_direct_frame_us"] = await bench_fanout(frames[0], send_frame_direct, sink_cpus)
    results["fanout_prebuilt_socket_send_us"] = await bench_fanout(
        wire_frame(frames[0]), send_prebuilt_to_socket, sink_cpus
    )
    with tempfile.TemporaryDirectory() as tmp:
        nats_server = EmbeddedNats(Path(tmp))
        nats_server.start()
        try:
            settings = Settings(nats_url=nats_server.url)
            connection = NatsConnection(settings)
            await connection.start()
            doc_log = DocLog(connection, "micro")
            nats_pid = nats_server.process.pid  # type: ignore[union-attr]
            doc_id, results["publish_1_in_flight"] = await bench_publish(
                doc_log, updates, 1, nats_pid
            )
            _, results["publish_32_in_flight"] = await bench_publish(doc_log, updates, 32, nats_pid)
            results["consume"] = await bench_consume(doc_log, doc_id, n, nats_pid)
            await connection.stop()
        finally:
            nats_server.stop()
    return results


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=5000, help="updates per stage")
    parser.add_argument("--output", type=Path, default=BENCH_DIR / "results" / "micro_costs.json")
    args = parser.parse_args(argv)
    split = procstat.server_and_client_cpus()
    if split:
        procstat.pin([os.getpid()], split[0])
    results = json.dumps(asyncio.run(main_async(args.n)), indent=2)
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(results + "\n")
    print(results)
    return 0


if __name__ == "__main__":
    sys.exit(main())
