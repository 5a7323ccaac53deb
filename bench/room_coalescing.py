"""Micro benchmark: does coalescing a room's fan-out per event-loop turn lower its cost?

A room applies the updates that arrive in one event-loop turn and sends them to every y-websocket
peer either one frame per update (uncoalesced) or merged into one frame (what live/room.py
does). This measures the server-side CPU of that fan-out over real loopback WebSockets (Tornado
on both ends; the clients run in a child process so their CPU is not counted):

    python bench/room_coalescing.py                # 20 peers, 1/2/5/10/20 updates per turn
    python bench/room_coalescing.py --peers 50 --turns 400

Reported per setting: server CPU per delivered update (µs, = per update x peer), frames and bytes
sent, and the merge's share. Results go in docs/realtime.md.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing
import os
import socket
import sys
import time
from pathlib import Path

import pycrdt
import tornado.httpserver
import tornado.web
import tornado.websocket

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from live.room import AppliedUpdate, UpdateBatch


class Sink(tornado.websocket.WebSocketHandler):
    peers: list[Sink] = []
    ready = asyncio.Event()
    expected = 0

    def open(self) -> None:
        Sink.peers.append(self)
        if len(Sink.peers) == Sink.expected:
            Sink.ready.set()


def typing_updates(writers: int, count: int) -> list[bytes]:
    """Keystroke-sized updates from `writers` clients typing into one shared text."""
    docs = [pycrdt.Doc(client_id=1000 + i) for i in range(writers)]
    updates = []
    for n in range(count):
        doc = docs[n % writers]
        text = doc.get("text", type=pycrdt.Text)
        before = doc.get_state()
        text.insert(min(len(text), n % 7), "x")
        update = doc.get_update(before)
        updates.append(update)
        for other in docs:
            if other is not doc:
                other.apply_update(update)
    return updates


def run_clients(port: int, peers: int, done: multiprocessing.Event) -> None:  # type: ignore[valid-type]
    async def main() -> None:
        conns = [
            await tornado.websocket.websocket_connect(f"ws://127.0.0.1:{port}/sink")
            for _ in range(peers)
        ]

        async def drain(conn: tornado.websocket.WebSocketClientConnection) -> None:
            while await conn.read_message() is not None:
                pass

        tasks = [asyncio.ensure_future(drain(c)) for c in conns]
        # A multiprocessing event cannot be awaited: wait for it in a thread.
        await asyncio.to_thread(done.wait)  # type: ignore[attr-defined]
        for conn in conns:
            conn.close()
        await asyncio.gather(*tasks, return_exceptions=True)

    asyncio.run(main())


async def fan_out(updates: list[bytes], per_turn: int, coalesce: bool) -> dict[str, float]:
    frames = sent = 0
    merge_s = 0.0
    cpu0, wall0 = time.process_time(), time.perf_counter()
    for start in range(0, len(updates), per_turn):
        turn = [
            AppliedUpdate(start + i + 1, u, None, None)
            for i, u in enumerate(updates[start : start + per_turn])
        ]
        batches = [UpdateBatch(turn)] if coalesce else [UpdateBatch([u]) for u in turn]
        futures = []
        for batch in batches:
            m0 = time.process_time()
            frame = batch.yjs_frame
            merge_s += time.process_time() - m0
            for peer in Sink.peers:
                futures.append(peer.write_message(frame, binary=True))
                frames += 1
                sent += len(frame)
        await asyncio.gather(*futures)
        await asyncio.sleep(0)  # one event-loop turn per batch of arrivals, as in a room
    cpu = time.process_time() - cpu0
    deliveries = len(updates) * len(Sink.peers)
    return {
        "cpu_us_per_delivery": round(cpu / deliveries * 1e6, 2),
        "frames": frames,
        "bytes": sent,
        "merge_share": round(merge_s / cpu, 3) if cpu else 0.0,
        "wall_s": round(time.perf_counter() - wall0, 3),
    }


async def main(args: argparse.Namespace) -> None:
    app = tornado.web.Application([("/sink", Sink)], websocket_max_message_size=1 << 20)
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(128)
    sock.setblocking(False)
    port = sock.getsockname()[1]
    server = tornado.httpserver.HTTPServer(app)
    server.add_sockets([sock])
    Sink.expected = args.peers
    done = multiprocessing.Event()
    client = multiprocessing.Process(target=run_clients, args=(port, args.peers, done))
    client.start()
    await asyncio.wait_for(Sink.ready.wait(), 30)
    results = []
    for per_turn in args.per_turn:
        updates = typing_updates(writers=min(per_turn, 10), count=args.turns * per_turn)
        row = {"per_turn": per_turn}
        for coalesce in (False, True):
            await fan_out(updates[: per_turn * 20], per_turn, coalesce)  # warm-up
            row["coalesced" if coalesce else "uncoalesced"] = await fan_out(
                updates, per_turn, coalesce
            )
        results.append(row)
        print(json.dumps(row), flush=True)
    done.set()
    client.join(10)
    server.stop()
    print(
        json.dumps(
            {"peers": args.peers, "turns": args.turns, "pid": os.getpid(), "results": results}
        )
    )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--peers", type=int, default=20)
    parser.add_argument("--turns", type=int, default=300)
    parser.add_argument(
        "--per-turn", type=lambda s: [int(x) for x in s.split(",")], default=[1, 2, 5, 10, 20]
    )
    asyncio.run(main(parser.parse_args()))
