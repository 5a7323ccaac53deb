"""`collab` command line: `dev` (embedded stack), `serve` (production), `migrate`."""

from __future__ import annotations

import argparse
import asyncio
import ctypes
import dataclasses
import errno
import os
import secrets
import signal
import socket
import sys
import traceback
from pathlib import Path
from types import ModuleType
from typing import NoReturn

import tornado.netutil
import tornado.process

from models.migrate import migrate
from ops._runtime import OpsError, add_common_arguments, emit, fail, settings_for
from ops.exit_codes import ExitCode
from server.dev_lock import DataDirBusy, DataDirLock, LockHolder
from server.dev_services import DevServices, remove_services, write_services
from server.dev_watch import ServiceWatch, describe_death
from server.embedded import PR_SET_PDEATHSIG, EmbeddedStack
from server.error_tracking import require_sdk
from server.event_loop import install_event_loop
from server.logging import configure_logging
from server.settings import ConfigError, Settings

JWT_SECRET_FILE = "jwt_secret"
# `collab dev --cluster`: three nats-servers, the smallest cluster that survives losing one (R3).
DEV_CLUSTER_SIZE = 3


def dev_jwt_secret(data_dir: Path) -> str:
    """Generated once per data dir and reused, so dev tokens survive restarts."""
    path = data_dir / JWT_SECRET_FILE
    if path.exists():
        return path.read_text().strip()
    data_dir.mkdir(parents=True, exist_ok=True)
    secret = secrets.token_urlsafe(48)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(secret)
    return secret


def dev_public_url(host: str, port: int) -> str:
    """The address a browser on this machine reaches `collab dev` at (a wildcard bind is
    reached on loopback)."""
    if host in ("", "0.0.0.0"):
        host = "127.0.0.1"
    elif host == "::":
        host = "::1"
    return f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def cmd_dev(args: argparse.Namespace) -> int:
    settings = Settings.from_env()
    settings = dataclasses.replace(
        settings,
        host=args.host or settings.host,
        port=args.port if args.port is not None else settings.port,
        data_dir=Path(args.data_dir) if args.data_dir else settings.data_dir,
        log_format=os.environ.get("COLLAB_LOG_FORMAT", "console"),
        # Mail goes to the embedded mail catcher (below), or is shown in the dev log when the
        # services are external; COLLAB_MAIL_BACKEND set chooses for itself.
        mail_backend=os.environ.get("COLLAB_MAIL_BACKEND") or "console",
    )
    if "COLLAB_PUBLIC_BASE_URL" not in os.environ:
        # Links in mail (verification, reset, invitations) open this server, also on --port.
        settings = dataclasses.replace(
            settings, public_base_url=dev_public_url(settings.host, settings.port)
        )
    configure_logging(settings.log_level, settings.log_format)
    try:
        install_event_loop(settings)
    except ConfigError as err:
        print(f"collab dev: {err}", file=sys.stderr)
        return ExitCode.CONFIG
    data_dir = settings.data_dir.resolve()
    external = settings.database_url and settings.nats_url and settings.redis_url
    lock = DataDirLock(data_dir)
    try:
        # Both checks come before anything starts, so a refused start changes nothing.
        if not external:
            lock.acquire(LockHolder(os.getpid(), f"http://{settings.host}:{settings.port}"))
        sockets = bind_http(settings.host, settings.port)
    except (DataDirBusy, PortInUse) as err:
        lock.release()
        print(f"collab dev: {err}", file=sys.stderr)
        return ExitCode.IN_USE
    try:
        return _run_dev(args, settings, data_dir, sockets, external=bool(external))
    finally:
        lock.release()


def _run_dev(
    args: argparse.Namespace,
    settings: Settings,
    data_dir: Path,
    sockets: list[socket.socket],
    *,
    external: bool,
) -> int:
    stack = None
    watch = None
    if not external:
        stack = _dev_stack(data_dir, settings, cluster=args.cluster)
        # SIGTERM during start-up must still stop what was started.
        signal.signal(signal.SIGTERM, _interrupt)
        stack.start()
        settings = settings.with_services(stack.postgres.url(), stack.nats.url, stack.redis.url)
        if stack.mailbox:
            settings = catch_mail(settings, stack.mailbox.port)
        if args.cluster:
            settings = dataclasses.replace(settings, stream_replicas=DEV_CLUSTER_SIZE)
        # A dead embedded server stops the node (SIGTERM to ourselves: the graceful path).
        watch = ServiceWatch(stack, lambda _dead: os.kill(os.getpid(), signal.SIGTERM)).start()
    if not settings.jwt_secret:
        settings = dataclasses.replace(settings, jwt_secret=dev_jwt_secret(data_dir))
    try:
        applied = migrate(settings.database_url)
        print(f"collab dev: data in {data_dir}")
        for name, url in stack.describe().items() if stack else []:
            print(f"  {name:9} {url}")
        print(f"  migrations applied: {', '.join(applied) or 'none (up to date)'}")
        print(f"  serving    http://{settings.host}:{settings.port}  (Ctrl-C to stop)")
        sys.stdout.flush()
        announce_services(data_dir, settings)
        from server.runner import serve_until_signalled

        asyncio.run(serve_until_signalled(settings, sockets))
    except KeyboardInterrupt:
        pass
    finally:
        remove_services(data_dir, os.getpid())
        if watch:
            watch.stop()
        if stack:
            stack.stop()
            print("collab dev: stopped postgres, nats-server and redis-server")
    if watch and watch.died:
        print(describe_death(watch.died), file=sys.stderr)
        return ExitCode.UNAVAILABLE
    return 0


class PortInUse(OSError):
    """The HTTP port is taken (by another `collab dev`, or anything else)."""


def bind_http(host: str, port: int) -> list[socket.socket]:
    """Bind the HTTP port now and keep it, so a port in use is a one-line error before the
    stack starts, and nothing can take the port between this check and serving."""
    try:
        return tornado.netutil.bind_sockets(port, host)
    except OSError as err:
        if err.errno != errno.EADDRINUSE:
            raise
        raise PortInUse(
            err.errno,
            f"port {port} on {host} is already in use; stop what listens there or pass --port",
        ) from err


def announce_services(data_dir: Path, settings: Settings) -> None:
    """Write the URLs for the ops commands (`server/dev_services.py`)."""
    write_services(
        data_dir,
        DevServices(
            pid=os.getpid(),
            database_url=settings.database_url,
            nats_url=settings.nats_url,
            redis_url=settings.redis_url,
            http_url=f"http://{settings.host}:{settings.port}",
            smtp_url=(
                f"smtp://{settings.smtp_host}:{settings.smtp_port}"
                if settings.mail_backend == "smtp"
                else ""
            ),
        ),
    )


def _dev_stack(data_dir: Path, settings: Settings, *, cluster: bool) -> EmbeddedStack:
    """The embedded services; `--cluster` runs NATS as a local 3-member JetStream cluster (the
    production shape, R3 streams) instead of one server. A mail catcher runs unless the
    environment chose a mail backend (COLLAB_MAIL_BACKEND)."""
    return EmbeddedStack(
        data_dir,
        nats_sync_interval=settings.nats_sync_interval,
        nats_servers=DEV_CLUSTER_SIZE if cluster else 1,
        mailbox=not os.environ.get("COLLAB_MAIL_BACKEND"),
    )


def catch_mail(settings: Settings, port: int) -> Settings:
    """Every mail to the embedded SMTP catcher, over real SMTP like production (no TLS, no AUTH
    on loopback): what a developer reads with `collab mailbox` is what the mailer sent."""
    return dataclasses.replace(
        settings,
        mail_backend="smtp",
        smtp_host="127.0.0.1",
        smtp_port=port,
        smtp_tls="none",
        smtp_username="",
        smtp_password="",
    )


def cmd_serve(args: argparse.Namespace) -> int:
    settings = Settings.from_env()
    settings = dataclasses.replace(
        settings,
        host=args.host or settings.host,
        port=args.port if args.port is not None else settings.port,
        processes=args.processes if args.processes is not None else settings.processes,
    )
    configure_logging(settings.log_level, settings.log_format)
    try:
        settings.require_production()
        require_sdk(settings)
        loop = install_event_loop(settings)
    except ConfigError as err:
        print(f"collab serve: {err}", file=sys.stderr)
        return ExitCode.CONFIG
    if not args.no_migrate:
        migrate(settings.database_url)
    sockets = tornado.netutil.bind_sockets(settings.port, settings.host)
    if settings.processes != 1:
        task_id = _fork_workers(settings.processes)
        settings = dataclasses.replace(settings, node_id=f"{settings.node_id}-{task_id}")
    from server.runner import serve_until_signalled

    print(f"collab serve: node {settings.node_id} on the {loop} event loop", file=sys.stderr)
    asyncio.run(serve_until_signalled(settings, sockets))
    return 0


def _fork_workers(processes: int) -> int:
    """Fork worker processes (each a stateless node); returns the worker's index in the child.

    The parent only supervises (Tornado restarts crashed workers). SIGTERM/SIGINT to the parent is
    forwarded to the whole process group so every worker shuts down gracefully; workers also get
    SIGTERM if the parent dies abruptly (PR_SET_PDEATHSIG).
    """
    forwarded = False

    def forward(signum: int, frame: object) -> None:
        nonlocal forwarded
        if not forwarded:
            forwarded = True
            os.killpg(os.getpgrp(), signal.SIGTERM)

    signal.signal(signal.SIGTERM, forward)
    signal.signal(signal.SIGINT, forward)
    task_id = tornado.process.fork_processes(processes or None, max_restarts=100)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    signal.signal(signal.SIGINT, signal.default_int_handler)
    ctypes.CDLL("libc.so.6").prctl(PR_SET_PDEATHSIG, signal.SIGTERM)
    return task_id


def cmd_migrate(args: argparse.Namespace) -> int:
    """DATABASE_URL, or the running `collab dev`'s database (like the ops commands)."""
    configure_logging(Settings.from_env().log_level, "console")
    try:
        settings = settings_for(args, need_db=True, need_nats=False)
    except OpsError as err:
        return fail(err, as_json=args.json)
    applied = migrate(settings.database_url)
    text = "applied: " + (", ".join(applied) if applied else "nothing, schema is at head")
    emit({"applied": applied}, as_json=args.json, text=text)
    return ExitCode.OK


class CollabArgumentParser(argparse.ArgumentParser):
    """argparse exits 2 on a usage error, which monitoring reads as "critical": exit 64 instead
    (`ops/exit_codes.py`). Subcommand parsers inherit the class."""

    def error(self, message: str) -> NoReturn:
        self.print_usage(sys.stderr)
        self.exit(ExitCode.USAGE, f"{self.prog}: error: {message}\n")


def build_parser() -> argparse.ArgumentParser:
    parser = CollabArgumentParser(prog="collab", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    dev = sub.add_parser("dev", help="run on the embedded Postgres + NATS + Redis stack")
    dev.add_argument("--host")
    dev.add_argument("--port", type=int)
    dev.add_argument("--data-dir", help="default ./.collab-data (COLLAB_DATA_DIR)")
    dev.add_argument(
        "--cluster",
        action="store_true",
        help="NATS as a local 3-server JetStream cluster with R3 streams",
    )
    dev.set_defaults(func=cmd_dev)
    serve = sub.add_parser("serve", help="production: DATABASE_URL, NATS_URL, REDIS_URL required")
    serve.add_argument("--host")
    serve.add_argument("--port", type=int)
    serve.add_argument("--processes", type=int, help="0 = one per CPU (COLLAB_PROCESSES)")
    serve.add_argument("--no-migrate", action="store_true")
    serve.set_defaults(func=cmd_serve)
    mig = sub.add_parser("migrate", help="apply pending migrations to DATABASE_URL")
    add_common_arguments(mig)
    mig.set_defaults(func=cmd_migrate)
    for name, module in _ops_commands():
        op = sub.add_parser(name, help=module.__doc__.splitlines()[0] if module.__doc__ else "")
        module.configure_parser(op)
        op.set_defaults(func=module.run)
    return parser


def _ops_commands() -> list[tuple[str, ModuleType]]:
    """Operator scripts in `ops/` that expose `configure_parser` and `run` become subcommands."""
    import importlib
    import pkgutil

    import ops

    found = []
    for info in pkgutil.iter_modules(ops.__path__):
        module = importlib.import_module(f"ops.{info.name}")
        if hasattr(module, "configure_parser") and hasattr(module, "run"):
            found.append((info.name.replace("_", "-"), module))
    return found


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args))
    except Exception:
        # Python's own status for an uncaught exception is 1, which reads as "warning".
        traceback.print_exc()
        return ExitCode.SOFTWARE


if __name__ == "__main__":
    sys.exit(main())
