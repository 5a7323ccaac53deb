"""`collab dev` notices when one of its embedded servers dies, says so, and stops.

A node whose Postgres, nats-server or redis-server has exited can only answer 503s (or, for Redis,
degrade quietly); a developer would see errors with no cause. So a thread polls the child
processes; the first one found exited is logged as an error naming the service, its exit status
and its log file, and `on_death` is called once (`collab dev` then shuts down gracefully and exits
69). Restarting the service instead was rejected: a Postgres that died mid-write or a NATS that lost
its store wants a developer's eyes, and a restart loop would hide the cause.
"""

from __future__ import annotations

import threading
from collections.abc import Callable

import structlog

from server.embedded import EmbeddedStack, ManagedProcess

log = structlog.get_logger("collab.dev")

POLL_INTERVAL_S = 0.5


class ServiceWatch:
    """Started after the stack is up; `stop()` before stopping the stack on purpose."""

    def __init__(
        self,
        stack: EmbeddedStack,
        on_death: Callable[[ManagedProcess], None],
        interval_s: float = POLL_INTERVAL_S,
    ) -> None:
        self.stack = stack
        self.on_death = on_death
        self.interval_s = interval_s
        self.died: ManagedProcess | None = None
        self._stopping = threading.Event()
        self._thread = threading.Thread(target=self._run, name="dev-service-watch", daemon=True)

    def start(self) -> ServiceWatch:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stopping.set()
        if self._thread.is_alive():
            self._thread.join()

    def _run(self) -> None:
        while not self._stopping.wait(self.interval_s):
            dead = next((p for p in self.stack.processes() if p.proc.poll() is not None), None)
            if dead is None:
                continue
            self.died = dead
            log.error(
                "dev.service_died",
                service=dead.name,
                pid=dead.pid,
                exit_status=dead.proc.returncode,
                log_file=str(dead.log),
                action="stopping collab dev",
            )
            self.on_death(dead)
            return


def describe_death(process: ManagedProcess) -> str:
    """One line for stderr when `collab dev` exits because of `process`."""
    return (
        f"collab dev: embedded {process.name} (pid {process.pid}) exited with status"
        f" {process.proc.returncode}; stopped. See {process.log}"
    )
