"""`python -m bench.patched_serve serve …`: `collab serve` with experimental changes patched in.

The benchmark's way to *measure* a suggested change in the whole system before its owner makes
it for real (bench/FINDINGS.md). Patches are chosen with $COLLAB_BENCH_PATCHES (comma-separated);
bench/run.py `--patches` sets it and labels the rows. Nothing here is meant to ship as is:

* `direct-frame`: the document socket writes each frame with the WebSocket protocol's frame
  writer instead of `write_message`, which wraps every frame in a coroutine and an asyncio Task;
  the slow-reader bound uses the stream's own write-buffer size instead of a callback per frame.
* `socket-send`: each message is framed once for all peers (server frames are unmasked, so the
  bytes are the same for everyone) and handed to the socket directly while the stream has nothing
  queued -- no Future and no callback per frame; only a short write goes through the IOStream.
* `no-coalesce`: a room flushes after every applied update instead of once per event-loop turn
  (to measure what the engine's coalescing saves).
* `uvloop` / `asyncio-loop`: run the node on uvloop's event loop / on the standard library's
  (to measure the event loop alone, whichever the shipped default is).
* `processes2`: `collab serve --processes 2` (two worker processes, each a node, behind one
  listening socket; bench/run.py counts the CPU of the supervisor and its workers).
* `no-refresher`: the projection refresher off (`COLLAB_PROJECTION_REFRESH_S=0`), to measure what
  keeping the `blocks` projection within seconds of live edits costs per edit.
* `no-unload-snapshot`: rooms do not compact their document when they unload (with the snapshot
  job off: a late joiner replays the whole log, as after a node crash; bench/late_joiner.py).
Diagnostics, switched by SIGUSR1 (start) / SIGUSR2 (stop and write):
* $COLLAB_BENCH_CPROFILE_OUT: a cProfile of the window (pstats; bench/run.py `--cprofile`);
* $COLLAB_BENCH_TRACEMALLOC_OUT: Python allocations still alive at the end of the window that
  were not at its start, grouped by where they were allocated (bench/late_joiner.py
  `--tracemalloc`, to find what room churn leaves behind; bench/run.py `--tracemalloc`, what
  connected clients hold): totals by file and by line first, then by traceback.
"""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from collections.abc import Callable
from typing import Any

import tornado.websocket

from handlers import ws_documents
from live import room, rooms
from server.cli import main

_OPCODE_BINARY = 0x2
_OPCODE_TEXT = 0x1


def _direct_frame_send(self: ws_documents.DocumentSocketHandler, message: bytes | str) -> None:
    connection = self.ws_connection
    if connection is None or connection.is_closing():
        return
    # The slow-reader bound is checked by the hub's Connection.send before this is called.
    binary = isinstance(message, bytes)
    payload = message if binary else message.encode()
    try:
        connection._write_frame(True, _OPCODE_BINARY if binary else _OPCODE_TEXT, payload)  # type: ignore[attr-defined]
    except tornado.iostream.StreamClosedError:
        return


class _WireFrames:
    """The last message's wire frame: a room hands the same bytes object to every peer of a
    batch, so it is framed once (server frames are unmasked, identical for every peer)."""

    message: bytes | str | None = None
    frame = b""

    @classmethod
    def of(cls, message: bytes | str) -> bytes:
        if message is not cls.message:
            payload = message if isinstance(message, bytes) else message.encode()
            opcode = _OPCODE_BINARY if isinstance(message, bytes) else _OPCODE_TEXT
            cls.message, cls.frame = message, _frame_header(opcode, len(payload)) + payload
        return cls.frame


def _frame_header(opcode: int, length: int) -> bytes:
    first = 0x80 | opcode  # FIN
    if length < 126:
        return bytes([first, length])
    if length < 1 << 16:
        return bytes([first, 126]) + length.to_bytes(2, "big")
    return bytes([first, 127]) + length.to_bytes(8, "big")


def _socket_send(self: ws_documents.DocumentSocketHandler, message: bytes | str) -> None:
    connection = self.ws_connection
    if connection is None or connection.is_closing():
        return
    stream = connection.stream  # type: ignore[attr-defined]
    frame = _WireFrames.of(message)
    if not stream._write_buffer:
        try:
            sent = stream.socket.send(frame)
        except BlockingIOError:
            sent = 0
        except OSError:
            return  # the stream notices the broken socket on its next read
        if sent == len(frame):
            return
        frame = frame[sent:]
    try:
        stream.write(frame)
    except tornado.iostream.StreamClosedError:
        return


async def _no_unload_snapshot(self: rooms.RoomManager, doc_id: str) -> None:
    return None


def _flush_every_update(self: room.Room) -> None:
    self._flush()


def _event_loop(name: str) -> None:
    if name == "uvloop":
        import uvloop

        asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())
    else:
        asyncio.set_event_loop_policy(asyncio.DefaultEventLoopPolicy())
    os.environ["COLLAB_EVENT_LOOP"] = name


PATCHES: dict[str, Callable[[], None]] = {
    "direct-frame": lambda: setattr(ws_documents.DocumentSocketHandler, "send", _direct_frame_send),
    "socket-send": lambda: setattr(ws_documents.DocumentSocketHandler, "send", _socket_send),
    "uvloop": lambda: _event_loop("uvloop"),
    "asyncio-loop": lambda: _event_loop("asyncio"),
    "processes2": lambda: os.environ.__setitem__("COLLAB_PROCESSES", "2"),
    "no-coalesce": lambda: setattr(room.Room, "_schedule_flush", _flush_every_update),
    # permessage-deflate offered to clients (stock y-websocket over Node's `ws` accepts it): each
    # peer then has its own compression context, so frames go through Tornado's writer per peer.
    "deflate": lambda: setattr(
        ws_documents.DocumentSocketHandler, "get_compression_options", lambda self: {}
    ),
    # the projection refresher off: what keeping `blocks` within seconds of live edits costs
    "no-refresher": lambda: os.environ.__setitem__("COLLAB_PROJECTION_REFRESH_S", "0"),
    "no-unload-snapshot": lambda: setattr(
        rooms.RoomManager, "_snapshot_unloaded", _no_unload_snapshot
    ),
}


def apply_patches(names: str) -> list[str]:
    applied = []
    for name in filter(None, (n.strip() for n in names.split(","))):
        if name not in PATCHES:
            raise SystemExit(f"unknown patch {name!r}; known: {', '.join(PATCHES)}")
        PATCHES[name]()
        applied.append(name)
    return applied


def _install_profiler_signals(output: str) -> None:
    import cProfile

    profile = cProfile.Profile()

    def stop(_signum: int, _frame: Any) -> None:
        profile.disable()
        profile.dump_stats(output)

    signal.signal(signal.SIGUSR1, lambda _signum, _frame: profile.enable())
    signal.signal(signal.SIGUSR2, stop)


#: Frames kept per allocation: enough to see which of our functions made it.
TRACEMALLOC_FRAMES = 12
TRACEMALLOC_TOP = 40


def _install_tracemalloc_signals(output: str) -> None:
    import gc
    import tracemalloc

    tracemalloc.start(TRACEMALLOC_FRAMES)
    baseline: list[tracemalloc.Snapshot] = []

    def start(_signum: int, _frame: Any) -> None:
        gc.collect()
        baseline[:] = [tracemalloc.take_snapshot()]

    def stop(_signum: int, _frame: Any) -> None:
        gc.collect()
        snapshot = tracemalloc.take_snapshot()
        total = sum(stat.size_diff for stat in snapshot.compare_to(baseline[0], "filename"))
        lines = [f"{total / 1024:+.1f} KiB in all (Python allocations only)"]
        for group in ("filename", "lineno"):
            lines.append(f"\nby {group}:")
            for stat in snapshot.compare_to(baseline[0], group)[:TRACEMALLOC_TOP]:
                frame = stat.traceback[0]  # grouped by file or line: one frame
                where = (
                    frame.filename if group == "filename" else f"{frame.filename}:{frame.lineno}"
                )
                lines.append(
                    f"{stat.size_diff / 1024:+10.1f} KiB {stat.count_diff:+8d} blocks  {where}"
                )
        lines.append("\nby traceback:")
        for stat in snapshot.compare_to(baseline[0], "traceback")[:TRACEMALLOC_TOP]:
            lines.append(f"{stat.size_diff / 1024:+10.1f} KiB {stat.count_diff:+8d} blocks")
            lines += [f"        {frame}" for frame in stat.traceback.format()[-8:]]
        with open(output, "w") as handle:
            handle.write("\n".join(lines) + "\n")

    signal.signal(signal.SIGUSR1, start)
    signal.signal(signal.SIGUSR2, stop)


if __name__ == "__main__":
    apply_patches(os.environ.get("COLLAB_BENCH_PATCHES", ""))
    if os.environ.get("COLLAB_BENCH_CPROFILE_OUT"):
        _install_profiler_signals(os.environ["COLLAB_BENCH_CPROFILE_OUT"])
    if os.environ.get("COLLAB_BENCH_TRACEMALLOC_OUT"):
        _install_tracemalloc_signals(os.environ["COLLAB_BENCH_TRACEMALLOC_OUT"])
    sys.exit(main())
