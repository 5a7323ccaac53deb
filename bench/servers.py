"""The servers under test: ours (a `collab serve` subprocess on the embedded stack) and the reference
npm `@y/websocket-server` 0.1.1 (its own `bin`, in-memory), plus the Node driver's dependencies.

Both servers run as separate processes so their CPU time and peak RSS can be read from /proc; each
scenario gets a fresh server process, so a scenario's peak RSS is its own.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import hashlib
import json
import os
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import nats
import psycopg2

from bench import procstat
from bus.jetstream import DOCS_STREAM, doc_update_subject
from models.migrate import migrate
from server.embedded import EmbeddedStack, _die_with_parent, free_port

BENCH_DIR = Path(__file__).resolve().parent
REPO_ROOT = BENCH_DIR.parent
DRIVER_SCRIPT = BENCH_DIR / "ws_bench.mjs"
REFERENCE_BIN = BENCH_DIR / "node_modules" / "@y" / "websocket-server" / "src" / "server.js"

#: A cold `npm ci` of ~40 packages takes seconds; allow for a slow registry.
NPM_INSTALL_TIMEOUT_S = 300.0
#: Our server connects to Postgres, NATS and Redis and declares its streams before it is ready.
SERVER_START_TIMEOUT_S = 60.0
VALGRIND_SLOWDOWN = 10  # start-up under valgrind (instrumentation off until measured)
SERVER_STOP_TIMEOUT_S = 20.0
HTTP_TIMEOUT_S = 30.0
#: Tokens must outlive the longest run (connections are opened at each scenario's start).
BENCH_ACCESS_TOKEN_TTL_S = 4 * 3600
BENCH_PASSWORD = "bench-password-123"


class BenchError(RuntimeError):
    """A server did not start, an HTTP call failed, or the driver misbehaved."""


# --------------------------------------------------------------------------------------------------
# Node dependencies
# --------------------------------------------------------------------------------------------------


def _node_modules_current() -> bool:
    manifest = json.loads((BENCH_DIR / "package.json").read_text())
    for package, version in manifest["dependencies"].items():
        installed = BENCH_DIR / "node_modules" / package / "package.json"
        if not installed.exists() or json.loads(installed.read_text()).get("version") != version:
            return False
    return True


def ensure_node_modules() -> None:
    """`npm ci` from bench/package-lock.json once, under a file lock (parallel test runs)."""
    if _node_modules_current():
        return
    npm = shutil.which("npm")
    if npm is None:
        raise BenchError("npm is not installed; the benchmark needs Node.js >= 18 and npm")
    digest = hashlib.sha256(str(BENCH_DIR).encode()).hexdigest()[:16]
    lock_path = Path(tempfile.gettempdir()) / f"collab-bench-npm-{digest}.lock"
    with open(lock_path, "w") as lock_file:
        fcntl.flock(lock_file, fcntl.LOCK_EX)
        if _node_modules_current():
            return
        result = subprocess.run(
            [npm, "ci", "--no-audit", "--no-fund"],
            cwd=BENCH_DIR,
            capture_output=True,
            text=True,
            timeout=NPM_INSTALL_TIMEOUT_S,
            check=False,
        )
        if result.returncode != 0 or not _node_modules_current():
            raise BenchError(f"npm ci failed in {BENCH_DIR}:\n{result.stderr[-4000:]}")


def node_binary() -> str:
    node = shutil.which("node")
    if node is None:
        raise BenchError("node is not installed; the benchmark needs Node.js >= 18")
    return node


# --------------------------------------------------------------------------------------------------
# Processes
# --------------------------------------------------------------------------------------------------


def child_preexec(cpus: set[int] | None) -> Callable[[], None]:
    """Die with us (PR_SET_PDEATHSIG) and run on `cpus` from the first instruction."""

    def preexec() -> None:
        _die_with_parent(signal.SIGTERM)
        if cpus:
            os.sched_setaffinity(0, cpus)

    return preexec


def _wait_listening(
    url: str,
    proc: subprocess.Popen[bytes],
    name: str,
    log: Path,
    timeout_s: float = SERVER_START_TIMEOUT_S,
) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise BenchError(f"{name} exited with {proc.returncode}: {tail(log)}")
        with contextlib.suppress(OSError), urllib.request.urlopen(url, timeout=1) as response:
            if response.status == 200:
                return
        time.sleep(0.1)
    raise BenchError(f"{name} not ready at {url} within {timeout_s}s: {tail(log)}")


def tail(path: Path, lines: int = 40) -> str:
    with contextlib.suppress(OSError):
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    return "(no log)"


@dataclass
class ServerProcess:
    """One server under test: its WebSocket base URL and the pids whose CPU counts as its cost."""

    name: str
    ws_base: str
    proc: subprocess.Popen[bytes]
    log: Path
    #: Extra processes of the same stack (nats-server for ours), by role.
    companions: dict[str, int] = field(default_factory=dict)

    @property
    def pid(self) -> int:
        return self.proc.pid

    def stop(self) -> None:
        if self.proc.poll() is not None:
            return
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(SERVER_STOP_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(SERVER_STOP_TIMEOUT_S)


def _spawn(argv: list[str], env: dict[str, str], log: Path, cpus: set[int] | None) -> Any:
    with log.open("ab") as log_file:
        return subprocess.Popen(
            argv,
            cwd=REPO_ROOT,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=log_file,
            stderr=subprocess.STDOUT,
            preexec_fn=child_preexec(cpus),
        )


def start_reference_server(workdir: Path, cpus: set[int] | None) -> ServerProcess:
    """`@y/websocket-server` exactly as its bin runs it: in-memory (no YPERSISTENCE), gc on."""
    port = free_port()
    env = {k: v for k, v in os.environ.items() if k not in ("YPERSISTENCE", "CALLBACK_URL")}
    env.update(HOST="127.0.0.1", PORT=str(port))
    log = workdir / "reference-server.log"
    proc = _spawn([node_binary(), str(REFERENCE_BIN)], env, log, cpus)
    server = ServerProcess("reference", f"ws://127.0.0.1:{port}/ws/documents", proc, log)
    try:
        _wait_listening(f"http://127.0.0.1:{port}/", proc, "reference server", log)
    except BaseException:
        server.stop()
        raise
    return server


# --------------------------------------------------------------------------------------------------
# Our stack
# --------------------------------------------------------------------------------------------------


def http_json(
    method: str, url: str, body: dict[str, Any] | None = None, token: str | None = None
) -> tuple[int, Any]:
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(url, data=data, method=method)
    request.add_header("Content-Type", "application/json")
    if token:
        request.add_header("Authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(request, timeout=HTTP_TIMEOUT_S) as response:
            raw = response.read()
            return response.status, json.loads(raw) if raw else None
    except urllib.error.HTTPError as err:
        raw = err.read()
        return err.code, json.loads(raw) if raw else None


class OurStack:
    """Embedded Postgres + nats-server (JetStream, file storage) + Redis, migrated and seeded.

    The stack lives for the whole run; `start_server()` starts a fresh `collab serve` process on
    it per scenario. JetStream durability is the default (file storage, PubAck after store).
    """

    def __init__(self, workdir: Path, cpus: set[int] | None) -> None:
        self.workdir = workdir
        self.cpus = cpus
        self.stack = EmbeddedStack(workdir / "stack", fast_unsafe=True)
        self.jwt_secret = secrets.token_urlsafe(48)
        self.token = ""
        self.user_id = ""
        self.workspace_id = ""
        self._server_count = 0

    def start(self) -> None:
        self.stack.start()
        migrate(self.stack.postgres.url())
        if self.cpus:
            stack_pids = [self.stack.postgres.process.pid, self.nats_pid]
            stack_pids.append(self.stack.redis.process.pid)
            procstat.pin(stack_pids, self.cpus)

    def stop(self) -> None:
        self.stack.stop()

    @property
    def nats_pid(self) -> int:
        assert self.stack.nats.process is not None
        return self.stack.nats.process.pid

    def server_env(self) -> dict[str, str]:
        env = dict(os.environ)
        env.update(
            DATABASE_URL=self.stack.postgres.url(),
            NATS_URL=self.stack.nats.url,
            REDIS_URL=self.stack.redis.url,
            COLLAB_JWT_SECRET=self.jwt_secret,
            COLLAB_LOG_LEVEL="WARNING",
            COLLAB_ACCESS_TOKEN_TTL_S=str(BENCH_ACCESS_TOKEN_TTL_S),
            COLLAB_HOST="127.0.0.1",
            # Every benchmark client comes from this one host: the per-address and per-user
            # socket caps (a production guard against one host holding a node) would refuse it.
            COLLAB_WS_MAX_SOCKETS_PER_IP="1000000",
            COLLAB_WS_MAX_SOCKETS_PER_USER="1000000",
            COLLAB_WS_MAX_CLIENTS_PER_DOCUMENT="1000000",
        )
        return env

    def start_server(
        self,
        env: dict[str, str] | None = None,
        module: str = "server.cli",
        label: str = "ours",
        prefix: list[str] | None = None,
    ) -> ServerProcess:
        """A fresh `python -m server.cli serve` (one process). `env` overrides settings
        (COLLAB_*) for this process; `module` runs another entry point with the same CLI
        (bench/cprofile_serve.py)."""
        self._server_count += 1
        port = free_port()
        log = self.workdir / f"our-server-{self._server_count}.log"
        argv = [*(prefix or []), sys.executable, "-m", module, "serve", "--port", str(port)]
        argv.append("--no-migrate")
        timeout_s = SERVER_START_TIMEOUT_S * (VALGRIND_SLOWDOWN if prefix else 1)
        proc = _spawn(argv, {**self.server_env(), **(env or {})}, log, self.cpus)
        server = ServerProcess(
            label,
            f"ws://127.0.0.1:{port}/ws/documents",
            proc,
            log,
            companions={"nats-server": self.nats_pid},
        )
        try:
            _wait_listening(f"http://127.0.0.1:{port}/readyz", proc, "our server", log, timeout_s)
        except BaseException:
            server.stop()
            raise
        return server

    # --- seed data -------------------------------------------------------------------------------

    def seed(self, server: ServerProcess) -> None:
        """One bench user (registered and logged in over HTTP) and a workspace it may edit in."""
        http_base = server.ws_base.replace("ws://", "http://").removesuffix("/ws/documents")
        email = f"bench-{uuid.uuid4().hex[:10]}@example.com"
        body = {"email": email, "password": BENCH_PASSWORD, "display_name": "Bench"}
        status, user = http_json("POST", f"{http_base}/api/v1/auth/register/", body)
        if status != 201:
            raise BenchError(f"register failed: {status} {user}")
        self.user_id = user["id"]
        login = {"email": email, "password": BENCH_PASSWORD}
        status, pair = http_json("POST", f"{http_base}/api/v1/auth/login/", login)
        if status != 200:
            raise BenchError(f"login failed: {status} {pair}")
        self.token = pair["access_token"]
        self.workspace_id = self._create_workspace(http_base)

    def _create_workspace(self, http_base: str) -> str:
        body = {"name": "Bench workspace"}
        status, reply = http_json("POST", f"{http_base}/api/v1/workspaces/", body, self.token)
        if status == 201:
            return str(reply["id"])
        if status not in (404, 405):
            raise BenchError(f"create workspace failed: {status} {reply}")
        # The workspaces API has not landed on this checkout: the same rows, written directly.
        slug = f"bench-{uuid.uuid4().hex[:12]}"
        with self._sql() as cur:
            cur.execute(
                "INSERT INTO workspaces (name, slug, created_by) VALUES (%s, %s, %s) RETURNING id",
                ("Bench workspace", slug, self.user_id),
            )
            workspace_id = str(cur.fetchone()[0])
            cur.execute(
                "INSERT INTO workspace_members (workspace_id, user_id, role) "
                "VALUES (%s, %s, 'member')",
                (workspace_id, self.user_id),
            )
        return workspace_id

    def create_documents(self, server: ServerProcess, count: int) -> list[str]:
        """`count` fresh, empty documents the bench user may edit."""
        http_base = server.ws_base.replace("ws://", "http://").removesuffix("/ws/documents")
        ids = []
        for index in range(count):
            body = {"workspace_id": self.workspace_id, "title": f"bench {index}"}
            status, reply = http_json("POST", f"{http_base}/api/v1/documents/", body, self.token)
            if status in (404, 405):
                return ids + self._insert_documents(count - index)
            if status != 201:
                raise BenchError(f"create document failed: {status} {reply}")
            ids.append(str(reply["id"]))
        return ids

    def _insert_documents(self, count: int) -> list[str]:
        with self._sql() as cur:
            cur.execute(
                "INSERT INTO documents (workspace_id, title, created_by) "
                "SELECT %s, 'bench ' || n, %s FROM generate_series(1, %s) AS n RETURNING id",
                (self.workspace_id, self.user_id, count),
            )
            return [str(row[0]) for row in cur.fetchall()]

    def wait_snapshot(self, doc_id: str, timeout_s: float) -> int:
        """Wait until a snapshot of `doc_id` covers its whole log (the newest entry of its
        subject); returns the snapshot's stream sequence. (Not a count of updates: a socket
        merges a run of queued updates into one log entry, so a fast fill writes fewer.)"""
        last = asyncio.run(self._last_log_seq(doc_id))
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            with self._sql() as cur:
                cur.execute(
                    "SELECT seq FROM document_snapshots WHERE document_id = %s AND seq >= %s",
                    (doc_id, last),
                )
                row = cur.fetchone()
            if row is not None:
                return int(row[0])
            time.sleep(0.2)
        raise BenchError(f"no snapshot of {doc_id} up to seq {last} in {timeout_s}s")

    def snapshot_form(self, doc_id: str) -> dict[str, Any]:
        """The stored snapshot's size and whether it is a `Doc`'s re-encoding (core/compaction.py)
        rather than merged updates: what a cold joiner is sent."""
        with self._sql() as cur:
            cur.execute(
                "SELECT length(state), compact FROM document_snapshots WHERE document_id = %s",
                (doc_id,),
            )
            row = cur.fetchone()
        return {} if row is None else {"bytes": int(row[0]), "reencoded": bool(row[1])}

    async def _last_log_seq(self, doc_id: str) -> int:
        nc = await nats.connect(self.stack.nats.url)
        try:
            msg = await nc.jetstream().get_last_msg(DOCS_STREAM, doc_update_subject(doc_id))
            return int(msg.seq or 0)
        finally:
            await nc.close()

    @contextlib.contextmanager
    def _sql(self) -> Any:
        conn = psycopg2.connect(self.stack.postgres.url())
        try:
            with conn, conn.cursor() as cur:
                yield cur
        finally:
            conn.close()


# --------------------------------------------------------------------------------------------------
# Either server
# --------------------------------------------------------------------------------------------------


@contextlib.contextmanager
def server_under_test(
    name: str,
    stack: OurStack | None,
    workdir: Path,
    cpus: set[int] | None,
    env: dict[str, str] | None = None,
    module: str = "server.cli",
    prefix: list[str] | None = None,
) -> Iterator[ServerProcess]:
    """A fresh server process ("reference", or ours under any label), stopped on exit; ours is
    seeded once. `env` and `module` apply to ours only (the reference has no settings to vary)."""
    if not is_ours(name):
        server = start_reference_server(workdir, cpus)
    else:
        assert stack is not None, "our server needs the embedded stack"
        server = stack.start_server(env=env, module=module, label=name, prefix=prefix)
        if not stack.token:
            stack.seed(server)
    try:
        yield server
    finally:
        server.stop()


def is_ours(name: str) -> bool:
    """ "ours", or a variant of it with experimental patches: "ours+direct-frame"."""
    return name == "ours" or name.startswith("ours+")


def new_rooms(server: ServerProcess, stack: OurStack | None, count: int) -> list[str]:
    """Room names for a run: fresh documents on ours; the same kind of UUIDs on the reference."""
    if is_ours(server.name):
        assert stack is not None
        return stack.create_documents(server, count)
    return [str(uuid.uuid4()) for _ in range(count)]


def token_for(server: ServerProcess, stack: OurStack | None) -> str:
    return stack.token if is_ours(server.name) and stack else ""


# --------------------------------------------------------------------------------------------------
# Node drivers
# --------------------------------------------------------------------------------------------------


def run_node_result(
    script: Path, args: list[str], cpus: set[int] | None, timeout_s: float
) -> dict[str, Any]:
    """Run a driver that ends with one `{"event": "result", …}` JSON line on stdout."""
    try:
        completed = subprocess.run(
            [node_binary(), str(script), *args],
            cwd=BENCH_DIR,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=timeout_s,
            preexec_fn=child_preexec(cpus),
            check=False,
        )
    except subprocess.TimeoutExpired as err:
        raise BenchError(
            f"{script.name} {' '.join(args[:2])} timed out after {timeout_s}s"
        ) from err
    lines = [json.loads(line) for line in completed.stdout.splitlines() if line.startswith("{")]
    result = lines[-1] if lines else {"event": "missing"}
    if result.get("event") != "result":
        detail = result.get("message") or completed.stderr[-2000:]
        raise BenchError(f"{script.name} failed (exit {completed.returncode}): {detail}")
    return result
