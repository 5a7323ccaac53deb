"""Instruction counts of two hot-path stages, which other work on the box does not change.

Run each workload under valgrind twice with two sizes; the difference of callgrind's `totals`
divided by the difference in work is the cost of one unit, start-up and imports cancelled out
(bench/results/issue15-micro.json):

    valgrind --tool=callgrind --callgrind-out-file=A python bench/instr_costs.py fanout ws_wire asyncio 50
    valgrind --tool=callgrind --callgrind-out-file=B python bench/instr_costs.py fanout ws_wire asyncio 250
    # (totals(B) - totals(A)) / (200 rounds x 100 peers) = instructions per delivery

* `fanout VARIANT LOOP ROUNDS`: ROUNDS rounds of one update frame to 100 real WebSocket peers
  (a Node `ws` sink, bench/micro_costs.py); VARIANT `ws_wire` (what the document socket does:
  handlers/ws_wire.py) or `frame_writer` (Tornado's `_write_frame`, what it did before);
  LOOP `asyncio` or `uvloop`. Use the real interpreter binary, not a pyenv shim (valgrind does
  not follow the shim's exec).
* `loop LOOP N`: N round trips of a 16-byte message between two Tornado IOStreams (the event
  loop's own cost per readiness event and callback), LOOP `asyncio` or `uvloop`.
* `validate WHAT N`: N times `decode` (decode_message: the strict walk + a throwaway yrs Doc) or
  `structure` (validate_update_structure: the walk alone) of a keystroke-sized update.
"""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import pycrdt

from bench import micro_costs
from handlers import ws_wire
from live.protocol import decode_message, encode_update, validate_update_structure


def send_ws_wire(socket: Any, frame: bytes) -> None:
    ws_wire.write_wire(socket.ws_connection, ws_wire.wire_frame(frame))


FANOUT_SENDS: dict[str, Callable[[Any, bytes], None]] = {
    "ws_wire": send_ws_wire,
    "frame_writer": micro_costs.send_frame_direct,
}


def fanout(variant: str, loop: str, rounds: int) -> None:
    if loop == "uvloop":
        import uvloop

        asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())
    micro_costs.FANOUT_ROUNDS = rounds
    micro_costs.SINK_TIMEOUT_S = 1200.0  # valgrind is slow
    frame = encode_update(micro_costs.typing_updates(2)[0])
    print(asyncio.run(micro_costs.bench_fanout(frame, FANOUT_SENDS[variant], {1})))


def loop_round_trips(loop: str, count: int) -> None:
    """`count` small messages bounced between two Tornado IOStreams over a socket pair: each
    round trip is two socket writes, two readiness events and two reads through the event loop
    -- the kind of loop turn a document edit makes about nine times (bench/FINDINGS.md §6)."""
    if loop == "uvloop":
        import uvloop

        asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())

    async def main() -> None:
        import socket

        import tornado.iostream

        left, right = socket.socketpair()
        a, b = tornado.iostream.IOStream(left), tornado.iostream.IOStream(right)

        async def echo() -> None:
            for _ in range(count):
                await b.write(await b.read_bytes(16))

        task = asyncio.ensure_future(echo())
        for _ in range(count):
            await a.write(b"x" * 16)
            await a.read_bytes(16)
        await task

    asyncio.run(main())


def validate(what: str, count: int) -> None:
    doc = pycrdt.Doc()
    text = doc.get("text", type=pycrdt.Text)
    text.insert(0, "x" * 100)
    before = doc.get_state()
    text.insert(50, "12;")
    update = doc.get_update(before)
    frame = encode_update(update)
    run: Callable[[], object] = {
        "decode": lambda: decode_message(frame),
        "structure": lambda: validate_update_structure(update),
    }[what]
    for _ in range(count):
        run()


if __name__ == "__main__":
    kind, *args = sys.argv[1:]
    if kind == "fanout":
        fanout(args[0], args[1], int(args[2]))
    elif kind == "loop":
        loop_round_trips(args[0], int(args[1]))
    else:
        validate(args[0], int(args[1]))
