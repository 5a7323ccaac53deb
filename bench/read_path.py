"""Server CPU per inbound WebSocket frame: Tornado's reader vs handlers/ws_reader.py.

    python bench/read_path.py [--sockets 200] [--rate 20000] [--seconds 5] [--repeat 3]

A server process (Tornado on uvloop, as `collab serve` runs; its handler does nothing with a
message) and a client process (raw sockets, pre-built masked frames of 30 bytes -- the size of a
keystroke update or an awareness echo) sending `--rate` frames/s spread over `--sockets` sockets,
each frame its own write. Reported: the server's CPU microseconds per frame (utime + stime from
/proc over the sending window), per reader, median of `--repeat` runs, alternating readers. The
end-to-end benchmark (bench/run.py) cannot show a difference of this size through the noise of a
shared VM; this isolates the read path.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import os
import socket
import statistics
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

READERS = ("tornado", "chunk")
FRAME_PAYLOAD = b"\x00\x02" + bytes(28)


def serve(reader: str, port_file: str) -> None:
    """The server process: a WebSocket endpoint whose handler ignores messages."""
    import tornado.httpserver
    import tornado.netutil
    import tornado.web
    import tornado.websocket
    import uvloop

    from handlers.ws_reader import ChunkReadingProtocol

    protocol = ChunkReadingProtocol if reader == "chunk" else tornado.websocket.WebSocketProtocol13

    class Handler(tornado.websocket.WebSocketHandler):
        def get_websocket_protocol(self) -> tornado.websocket.WebSocketProtocol | None:
            return protocol(self, False, tornado.websocket._WebSocketParams())

        def on_message(self, message: str | bytes) -> None:
            return None

    sockets = tornado.netutil.bind_sockets(0, "127.0.0.1", family=socket.AF_INET)

    async def main() -> None:
        app = tornado.web.Application([("/ws", Handler)])
        tornado.httpserver.HTTPServer(app).add_sockets(sockets)
        await asyncio.Event().wait()

    Path(port_file).write_text(str(sockets[0].getsockname()[1]))
    uvloop.run(main())


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def masked_frame(payload: bytes) -> bytes:
    key = os.urandom(4)
    return (
        bytes((0x82, 0x80 | len(payload)))
        + key
        + bytes(b ^ key[i % 4] for i, b in enumerate(payload))
    )


async def drive(port: int, sockets: int, rate: float, seconds: float, server_pid: int) -> float:
    """Open the sockets, send for `seconds`; the server's CPU microseconds per frame."""
    writers = []
    for _ in range(sockets):
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        key = base64.b64encode(os.urandom(16)).decode()
        writer.write(
            f"GET /ws HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
            f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n".encode()
        )
        await reader.readuntil(b"\r\n\r\n")
        writers.append(writer)
    frame = masked_frame(FRAME_PAYLOAD)
    await asyncio.sleep(0.5)
    interval = 0.001  # send in 1 ms ticks, round-robin over the sockets
    per_tick = rate * interval
    sent = 0
    owed = 0.0
    before = cpu_seconds(server_pid)
    start = time.monotonic()
    index = 0
    while (now := time.monotonic()) - start < seconds:
        owed = rate * (now - start) - sent
        for _ in range(int(min(owed, per_tick * 4))):
            writers[index].write(frame)
            index = (index + 1) % sockets
            sent += 1
        await asyncio.sleep(interval)
    await asyncio.sleep(0.3)  # let the server read the last frames
    used = cpu_seconds(server_pid) - before
    for writer in writers:
        writer.close()
    return used / sent * 1e6


def one_run(reader: str, args: argparse.Namespace) -> float:
    port_file = Path(f"/tmp/read_path_port_{os.getpid()}")
    port_file.unlink(missing_ok=True)
    server = subprocess.Popen([sys.executable, __file__, "--serve", reader, str(port_file)])
    try:
        while not port_file.exists() or not port_file.read_text():
            time.sleep(0.05)
        port = int(port_file.read_text())
        return asyncio.run(drive(port, args.sockets, args.rate, args.seconds, server.pid))
    finally:
        server.kill()
        server.wait()
        port_file.unlink(missing_ok=True)


def main() -> int:
    if len(sys.argv) == 4 and sys.argv[1] == "--serve":
        serve(sys.argv[2], sys.argv[3])
        return 0
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sockets", type=int, default=200)
    parser.add_argument("--rate", type=float, default=20000, help="frames/s over all sockets")
    parser.add_argument("--seconds", type=float, default=5)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    results: dict[str, list[float]] = {reader: [] for reader in READERS}
    for _ in range(args.repeat):
        for reader in READERS:
            results[reader].append(one_run(reader, args))
    for reader in READERS:
        runs = ", ".join(f"{value:.1f}" for value in results[reader])
        print(
            f"{reader:8} server CPU per frame: {statistics.median(results[reader]):.1f} µs  ({runs})"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
