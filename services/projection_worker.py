"""The projection's CPU work in one worker process, so it never holds the event loop.

Why a process: a refresh loads the whole document state into pycrdt, which for a 100k-update
document held the loop ~11 s (a joiner waited behind it, SIGTERM went unheard), and pycrdt holds
the GIL through `apply_update`, so a thread would only cut that block into per-load pieces
(bench/FINDINGS.md §6.1). `run(func, *args)` calls a function of services/projection_compute.py
there: bytes and plain values in, plain values back.

* One worker (`max_workers=1`), created on first use. Refreshes are background work: one at a
  time leaves the node's other cores to the sockets; a second document waits its turn.
* `forkserver`, with the compute module preloaded: a new worker (first use, after a crash, after
  a kill) is a fork of a small server process that has already imported pycrdt -- milliseconds --
  and never a fork of the node itself (its sockets, threads and event loop).
* The worker runs at a lower CPU priority than the node (`WORKER_NICE`): where it shares a core
  with the node, live traffic comes first and the projection lags a little more.
* A worker that dies (a Rust abort, the OOM killer, a kill) breaks the pool: the caller gets
  `ProjectionUnavailable` (an `Unavailable`: the refresher logs `projection.refresh_failed`, the
  next edit or snapshot retries) and the next call gets a new worker. A call running longer than
  `projection_timeout_s` is taken as hung and handled the same way, the worker killed.
* A caller cancelled while its work runs (the refresher or the snapshot job stopping) kills the
  worker: abandoned work must not keep the one worker busy for seconds.
* `stop()` kills the worker without waiting for it: SIGTERM during a long refresh exits at once
  (the next refresh on any node redoes the work).

`COLLAB_PROJECTION_WORKER=false` runs the same functions in-process, on the loop (debugging,
profiling).
"""

from __future__ import annotations

import asyncio
import ctypes
import multiprocessing
import os
import signal
import sys
from collections.abc import Callable
from concurrent.futures import Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from multiprocessing import forkserver
from typing import Any, TypeVar

import structlog

from core.errors import Unavailable
from server.metrics import PROJECTION_WORKER_CALLS, PROJECTION_WORKER_FAILURES
from server.settings import Settings

log = structlog.get_logger(__name__)

_T = TypeVar("_T")
# Imported once by the fork server, so each worker starts with them loaded.
WORKER_MODULES = ["services.projection_compute", "services.projection_worker"]
_PR_SET_PDEATHSIG = 1
# The worker's CPU priority below the node's: a refresh is background work, and on a core it
# shares with the node (a small host, or a pinned benchmark) the sockets and joins come first.
# Nice 10 leaves the worker ~10 % of a core the node saturates (CFS weights 110 vs 1024), so a
# refresh slows down under load instead of stopping (`projection_timeout_s` still bounds it).
WORKER_NICE = 10


class ProjectionUnavailable(Unavailable):
    """The worker died, hung or is stopped: this projection did not run (retry later)."""

    code = "projection_unavailable"


def _init_worker() -> None:
    """Worker initializer: a lower CPU priority (`WORKER_NICE`), and no outliving the node, even
    one killed by SIGKILL.

    Its parent is the fork server, which exits once every holder of its "alive" pipe is gone;
    each forked child inherits one end of it, so the worker closes its copy -- then the node alone
    keeps the fork server up -- and asks the kernel for SIGKILL when the fork server exits.
    (Without this an orphaned worker and fork server kept each other alive for ever, the worker
    blocked on its call queue, whose write end it also holds.)"""
    alive_fd = getattr(forkserver._forkserver, "_forkserver_alive_fd", None)
    if alive_fd is not None:
        os.close(alive_fd)  # (the worker starts no processes: nothing reads it again)
    if sys.platform == "linux":
        ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)
    if os.getppid() == 1:  # the fork server was already gone before the line above
        os._exit(1)
    os.nice(WORKER_NICE)


class ProjectionWorker:
    """The node's projection worker (a component: `stop()` kills it)."""

    def __init__(self, settings: Settings) -> None:
        self.in_process = not settings.projection_worker
        self.timeout_s = settings.projection_timeout_s
        self._pool: ProcessPoolExecutor | None = None
        self._stopped = False
        self.busy = 0  # calls handed to the worker and not finished (running + queued)

    async def start(self) -> None:
        """The worker starts on first use."""

    async def stop(self) -> None:
        self._stopped = True
        if self._pool is not None:
            self._discard(self._pool, kill=True)

    async def run(self, func: Callable[..., _T], *args: Any) -> _T:
        """`func(*args)` in the worker; what `func` raises is raised here (pickled across)."""
        if self._stopped:
            raise ProjectionUnavailable("the projection worker is stopped")
        if self.in_process:
            return func(*args)
        pool = self._pool or self._new_pool()
        try:
            future = pool.submit(func, *args)
        except (BrokenProcessPool, RuntimeError) as err:  # broke between two calls
            self._discard(pool, kill=True)
            raise ProjectionUnavailable(self._lost()) from err
        self.busy += 1
        PROJECTION_WORKER_CALLS.inc()
        try:
            return await self._result(pool, future)
        finally:
            self.busy -= 1
            PROJECTION_WORKER_CALLS.dec()

    async def _result(self, pool: ProcessPoolExecutor, future: Future[_T]) -> _T:
        try:
            return await asyncio.wait_for(asyncio.wrap_future(future), self.timeout_s)
        except BrokenProcessPool as err:
            # Every call the worker held fails with this; the first to see it reports it. (After
            # `stop()` or a kill below the pool is already discarded: nothing new to report.)
            if self._discard(pool, kill=True):
                PROJECTION_WORKER_FAILURES.labels("died").inc()
                log.error("projection_worker.died", error=repr(err))
            raise ProjectionUnavailable(self._lost()) from err
        except TimeoutError as err:
            if self._discard(pool, kill=True):
                PROJECTION_WORKER_FAILURES.labels("hung").inc()
                log.error("projection_worker.hung", timeout_s=self.timeout_s)
            raise ProjectionUnavailable(
                f"the projection took longer than {self.timeout_s:g} s; worker killed"
            ) from err
        except asyncio.CancelledError:
            if not future.cancel() and future.running() and self._discard(pool, kill=True):
                PROJECTION_WORKER_FAILURES.labels("abandoned").inc()  # free the one worker
            raise

    def _lost(self) -> str:
        return "the projection worker is stopped" if self._stopped else "the projection worker died"

    def _new_pool(self) -> ProcessPoolExecutor:
        context = multiprocessing.get_context("forkserver")
        context.set_forkserver_preload(WORKER_MODULES)
        self._pool = ProcessPoolExecutor(
            max_workers=1, mp_context=context, initializer=_init_worker
        )
        return self._pool

    def _discard(self, pool: ProcessPoolExecutor, *, kill: bool) -> bool:
        """Forget `pool` (the next call makes a new one), killing its worker first if asked:
        the calls it still holds fail with `BrokenProcessPool`. False if it was already gone."""
        current = self._pool is pool
        if current:
            self._pool = None
        if kill:
            # ProcessPoolExecutor has no public kill before Python 3.14 (`kill_workers`).
            for process in list((getattr(pool, "_processes", None) or {}).values()):
                process.kill()
        pool.shutdown(wait=False)
        return current

    def worker_pids(self) -> list[int]:
        """The live worker's process id(s) (tests and diagnostics)."""
        if self._pool is None:
            return []
        return [p.pid for p in getattr(self._pool, "_processes", {}).values() if p.pid]
