"""Keep-alive pings for every WebSocket of a node, from one task.

The rule is Tornado's `websocket_ping_interval` with the timeout equal to the interval (what the
node configured before): every socket is pinged once per interval, and a socket that has not
answered its previous ping (a pong) when its next one is due is closed ("ping timed out"), so a
half-open connection is found within two intervals. Tornado does it with one task per socket --
a task, a sleeping coroutine and a timer for every idle socket, ~2 KB each (issue 15, memory per
idle connection; bench/FINDINGS.md). Here one task visits the sockets in `SLICES` slices, one
slice per `interval / SLICES`, so the pings of a node are spread over the interval as Tornado's
were, and a socket costs one dict entry.
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import Protocol

import structlog

log = structlog.get_logger(__name__)

#: Slices of the interval: each tick pings about 1/SLICES of the node's sockets.
SLICES = 25


class Pingable(Protocol):
    """A socket as the pinger sees it (the Tornado side is handlers/ws_auth.py)."""

    def send_ping(self) -> None:
        """Write a ping frame; the socket notes its pong when one arrives."""

    def answered_ping(self) -> bool:
        """Whether a pong came since the last `send_ping`."""

    def ping_timed_out(self) -> None:
        """Close the socket: its peer did not answer a whole interval."""


class SocketPinger:
    """A node component: `add` a socket when it opens, `discard` it when it closes."""

    def __init__(self, interval_s: float) -> None:
        self.interval_s = interval_s
        # Per slice: socket -> whether it has been pinged (and so owes a pong).
        self._slices: list[dict[Pingable, bool]] = [{} for _ in range(SLICES)]
        self._next = 0  # the slice the next tick visits
        self._task: asyncio.Task[None] | None = None

    def add(self, socket: Pingable) -> None:
        """Start pinging `socket`: first one interval from now (into the slice visited last),
        as Tornado's first ping came one interval after the upgrade. Interval 0: no pings."""
        if self.interval_s <= 0:
            return
        self._slices[(self._next - 1) % SLICES][socket] = False
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._run(), name="ws-pinger")

    def discard(self, socket: Pingable) -> None:
        for sockets in self._slices:
            sockets.pop(socket, None)

    def __len__(self) -> int:
        return sum(len(sockets) for sockets in self._slices)

    async def _run(self) -> None:
        tick_s = self.interval_s / SLICES
        while True:
            await asyncio.sleep(tick_s)
            sockets = self._slices[self._next]
            self._next = (self._next + 1) % SLICES
            self.visit(sockets)

    @staticmethod
    def visit(sockets: dict[Pingable, bool]) -> None:
        """Close the sockets that owe a pong, ping the others."""
        for socket, pinged in list(sockets.items()):
            try:
                if pinged and not socket.answered_ping():
                    sockets.pop(socket, None)
                    socket.ping_timed_out()
                    continue
                sockets[socket] = True
                socket.send_ping()
            except Exception as err:  # one broken socket must not stop the pings of all others
                sockets.pop(socket, None)
                log.warning("ws.ping_failed", error=repr(err))

    async def start(self) -> None:
        """The task starts with the first socket."""

    async def stop(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
