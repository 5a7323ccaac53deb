"""`collab serve` nodes as real subprocesses, for tests that kill, stop or restart them by PID.

A node keeps its port across restarts (the balancer's upstream list names it), logs to a file in
the test's temp dir (printed on failure by the caller), and dies with the test process
(PR_SET_PDEATHSIG) however the test ends.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import sys
import time
from pathlib import Path

import tornado.httpclient

from server.embedded import _die_with_parent, free_port

REPO = Path(__file__).resolve().parent.parent
START_TIMEOUT_S = 45.0
STOP_TIMEOUT_S = 30.0
POLL_S = 0.1


class AppNode:
    """One `python -m server.cli serve` process on a fixed free port."""

    def __init__(self, name: str, env: dict[str, str], log_dir: Path) -> None:
        self.name = name
        self.port = free_port()
        self.env = {**os.environ, **env, "COLLAB_NODE_ID": name}
        self.log_path = log_dir / f"{name}.log"
        self.process: asyncio.subprocess.Process | None = None

    @property
    def pid(self) -> int:
        assert self.process is not None, f"{self.name} is not running"
        return self.process.pid

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.returncode is None

    async def start(self, wait_ready: bool = True) -> None:
        with self.log_path.open("ab") as log:
            self.process = await asyncio.create_subprocess_exec(
                sys.executable,
                "-m",
                "server.cli",
                "serve",
                "--port",
                str(self.port),
                "--no-migrate",
                cwd=REPO,
                env=self.env,
                stdout=log,
                stderr=asyncio.subprocess.STDOUT,
                stdin=asyncio.subprocess.DEVNULL,
                preexec_fn=lambda: _die_with_parent(signal.SIGKILL),
            )
        if wait_ready:
            await self.wait_ready()

    async def wait_ready(self, timeout_s: float = START_TIMEOUT_S) -> None:
        """Until /readyz says 200 (Postgres and JetStream answer): then it can serve edits."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if not self.running:
                raise AssertionError(f"{self.name} exited during start-up:\n{self.log_tail()}")
            if await self.ready():
                return
            await asyncio.sleep(POLL_S)
        raise AssertionError(f"{self.name} not ready within {timeout_s}s:\n{self.log_tail()}")

    async def ready(self) -> bool:
        return await self.readyz_status() == 200

    async def readyz_status(self) -> int | None:
        client = tornado.httpclient.AsyncHTTPClient()
        try:
            response = await client.fetch(
                f"http://127.0.0.1:{self.port}/readyz", request_timeout=5, raise_error=False
            )
        except (OSError, tornado.httpclient.HTTPClientError):
            return None  # not listening yet, or bound but still starting (no answer)
        return response.code

    def signal(self, sig: int) -> None:
        if self.running:
            os.kill(self.pid, sig)

    async def kill(self) -> None:
        """SIGKILL: no shutdown code runs (R1/R8 style)."""
        self.signal(signal.SIGKILL)
        await self.wait_exit()

    async def terminate(self) -> None:
        """SIGTERM: the graceful shutdown path (R19)."""
        self.signal(signal.SIGTERM)
        await self.wait_exit()

    async def wait_exit(self) -> None:
        if self.process is None:
            return
        try:
            await asyncio.wait_for(self.process.wait(), STOP_TIMEOUT_S)
        except TimeoutError:
            self.signal(signal.SIGKILL)
            await self.process.wait()

    async def aclose(self) -> None:
        with contextlib.suppress(ProcessLookupError):
            self.signal(signal.SIGCONT)  # a SIGSTOPped node cannot act on SIGKILL's peers
            await self.kill()

    def log_tail(self, lines: int = 40) -> str:
        if not self.log_path.exists():
            return ""
        return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])


def node_env(
    database_url: str, nats_url: str, redis_url: str, jwt_secret: str, **extra: str
) -> dict[str, str]:
    """What docker-compose.yml gives an app node, pointed at the test's services."""
    return {
        "DATABASE_URL": database_url,
        "NATS_URL": nats_url,
        "REDIS_URL": redis_url,
        "COLLAB_JWT_SECRET": jwt_secret,
        "COLLAB_XHEADERS": "true",
        "COLLAB_LOG_LEVEL": "INFO",
        "COLLAB_LOG_FORMAT": "json",
        **extra,
    }
