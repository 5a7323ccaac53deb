"""Closing sockets when their access token expires, from one timer per hub.

A socket's token expires at a whole second (the JWT's `exp`). A timer per socket
(`loop.call_later`) cost ~0.6 KB of every idle socket: the loop's timer handle, its copy of the
context, the bound method and its arguments (issue 15, memory per idle connection;
bench/FINDINGS.md). Here a socket waits in the set of its expiry second, and one timer runs for the
earliest second that still has sockets, so a socket closes when its own timer would have fired.
"""

from __future__ import annotations

import asyncio
import heapq
import time
from typing import Protocol

import structlog

log = structlog.get_logger(__name__)


class Expiring(Protocol):
    """A socket as the clock sees it (live/hub.py's `Connection`)."""

    def expire(self) -> None:
        """Close: the token expired."""


class ExpiryClock:
    """Sockets by expiry second (`add` when one opens, `discard` when it closes)."""

    def __init__(self) -> None:
        self._due: dict[int, set[Expiring]] = {}
        # The seconds of `_due` as a heap; a second whose sockets all closed stays in it (an int)
        # until the clock passes it.
        self._seconds: list[int] = []
        self._timer: asyncio.TimerHandle | None = None
        self._timer_at: int | None = None

    def add(self, socket: Expiring, at: int) -> None:
        sockets = self._due.get(at)
        if sockets is None:
            sockets = self._due[at] = set()
            heapq.heappush(self._seconds, at)
        sockets.add(socket)
        if self._timer_at is None or at < self._timer_at:
            self._arm(at)

    def discard(self, socket: Expiring, at: int) -> None:
        sockets = self._due.get(at)
        if sockets is not None:
            sockets.discard(socket)
            if not sockets:
                del self._due[at]

    def __len__(self) -> int:
        return sum(len(sockets) for sockets in self._due.values())

    def _arm(self, at: int) -> None:
        if self._timer is not None:
            self._timer.cancel()
        self._timer_at = at
        delay = max(0.0, at - time.time())
        self._timer = asyncio.get_running_loop().call_later(delay, self._fire)

    def _fire(self) -> None:
        self._timer = self._timer_at = None
        now = time.time()
        while self._seconds and self._seconds[0] <= now:
            for socket in list(self._due.pop(heapq.heappop(self._seconds), ())):
                try:
                    socket.expire()
                except Exception as err:  # one socket's failure must not keep the others open
                    log.error("ws.expire_failed", error=repr(err))
        while self._seconds and self._seconds[0] not in self._due:
            heapq.heappop(self._seconds)  # every socket of that second closed before it came
        if self._seconds:
            # Also when the loop's clock woke us a hair before the wall clock's second.
            self._arm(self._seconds[0])

    def stop(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
        self._timer = self._timer_at = None
