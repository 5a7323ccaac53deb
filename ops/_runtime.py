"""Shared plumbing of the ops commands: where the services are, a context with Postgres and NATS,
one error → exit-code funnel, and text/JSON output.

Service URLs come from the environment (the same variables as `collab serve`) or, when those
are not set, from the running `collab dev` of the data dir (`server/dev_services.py`), so a
developer types `collab replay --doc ID` with nothing else.

Ops commands connect to NATS *without* `ensure_streams` (`NatsConnection.start_for_tool`): an
operator's shell may not carry every stream-limit variable the nodes run with, and an inspection
must never rewrite a stream's config. Their context holds only what they use — no Redis, no rooms,
no scheduler — and satisfies `services.deps.SnapshotDeps`, which is all the services they call
ask for.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import dataclasses
import json
import sys
import uuid
from collections.abc import AsyncIterator, Callable, Coroutine
from datetime import datetime
from pathlib import Path
from typing import Any

import nats.errors

from bus.connection import NatsConnection
from bus.doc_log import DocLog
from core.errors import Unavailable
from models.db import Database
from models.repo import documents as documents_repo
from ops.exit_codes import ExitCode
from server.dev_services import StaleServicesFile, find_running, services_path
from server.logging import configure_logging
from server.settings import ConfigError, Settings
from services.projection_worker import ProjectionWorker


class OpsError(RuntimeError):
    """A clear message for the operator, and the status the command exits with."""

    exit_code = ExitCode.USAGE
    code = "usage"

    def __init__(self, message: str, exit_code: ExitCode | None = None) -> None:
        super().__init__(message)
        if exit_code is not None:
            self.exit_code = exit_code


class NotFoundError(OpsError):
    exit_code = ExitCode.NOT_FOUND
    code = "not_found"


class MissingConfig(OpsError):
    exit_code = ExitCode.CONFIG
    code = "config"


class TargetNotEmpty(OpsError):
    exit_code = ExitCode.CANT_CREATE
    code = "not_empty"


class TransferFailed(OpsError):
    exit_code = ExitCode.IO_ERROR
    code = "transfer_failed"


class ServiceUnavailable(OpsError):
    exit_code = ExitCode.UNAVAILABLE
    code = "unavailable"


def doc_id_arg(value: str) -> str:
    """argparse type: document ids are UUIDs (anything else is a typo, not a query)."""
    try:
        return str(uuid.UUID(value))
    except ValueError as err:
        raise argparse.ArgumentTypeError(f"not a document id (UUID): {value!r}") from err


def add_doc_or_all(parser: argparse.ArgumentParser) -> None:
    """`--doc ID` or `--all` (exactly one), for commands that work per document."""
    target = parser.add_mutually_exclusive_group(required=True)
    target.add_argument("--doc", type=doc_id_arg, help="a document id")
    target.add_argument("--all", action="store_true", help="every document")


def add_common_arguments(parser: argparse.ArgumentParser) -> None:
    """`--json` and `--data-dir`, on every ops command."""
    parser.add_argument("--json", action="store_true", help="machine-readable output")
    parser.add_argument(
        "--data-dir",
        type=Path,
        help="find the running `collab dev` here when the URLs are not set"
        " (default COLLAB_DATA_DIR or ./.collab-data)",
    )


def settings_for(
    args: argparse.Namespace, *, need_db: bool = True, need_nats: bool = True
) -> Settings:
    """The environment's URLs if set, else the running `collab dev`'s of the data dir."""
    settings = dataclasses.replace(Settings.from_env(), scheduler_enabled=False)
    needed = [("NATS_URL", settings.nats_url)] if need_nats else []
    if need_db:
        needed.append(("DATABASE_URL", settings.database_url))
    missing = [name for name, value in needed if not value]
    if missing:
        data_dir = (getattr(args, "data_dir", None) or settings.data_dir).resolve()
        settings = _from_dev_stack(settings, data_dir, missing)
    return settings


def _from_dev_stack(settings: Settings, data_dir: Path, missing: list[str]) -> Settings:
    try:
        services = find_running(data_dir)
    except StaleServicesFile as err:
        raise MissingConfig(str(err)) from err
    if services is None:
        raise MissingConfig(
            f"missing environment variables: {', '.join(missing)}, and no running `collab dev`"
            f" in {data_dir} ({services_path(data_dir).name} not found; --data-dir to point"
            " at another)"
        )
    return settings.with_services(services.database_url, services.nats_url, services.redis_url)


class OpsContext:
    """What an ops command works with: Postgres, NATS, the document log and the projection
    worker (a snapshot projects the state it saves)."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.db = Database.from_settings(settings)
        self.nats = NatsConnection(settings)
        self.doc_log = DocLog(self.nats, f"ops-{settings.node_id}")
        self.projection_worker = ProjectionWorker(settings)


@contextlib.asynccontextmanager
async def ops_context(settings: Settings, *, need_db: bool = True) -> AsyncIterator[OpsContext]:
    ctx = OpsContext(settings)
    if need_db:
        await ctx.db.start()
    try:
        await ctx.nats.start_for_tool(f"collab-ops-{settings.node_id}")
        yield ctx
    finally:
        await ctx.projection_worker.stop()
        await ctx.nats.nc.close()
        if need_db:
            await ctx.db.stop()


async def require_document(ctx: OpsContext, doc_id: str) -> None:
    """An unknown id is an error, never an empty document (deleted ones still count: their log
    may still be there)."""
    if not await documents_repo.document_exists(ctx.db, doc_id):
        raise NotFoundError(f"no such document: {doc_id}")


def _default(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat()
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return dataclasses.asdict(value)
    return str(value)


def to_json(payload: Any) -> str:
    return json.dumps(payload, default=_default, indent=2, sort_keys=True)


def as_text(payload: Any, indent: str = "") -> str:
    """A readable default rendering of a JSON-like payload: `key: value`, nested indented."""
    if isinstance(payload, dict):
        lines = []
        for key, value in payload.items():
            if isinstance(value, dict | list) and value:
                lines.append(f"{indent}{key}:")
                lines.append(as_text(value, indent + "  "))
            else:
                lines.append(f"{indent}{key}: {_scalar(value)}")
        return "\n".join(lines)
    if isinstance(payload, list):
        return "\n".join(
            f"{indent}-\n{as_text(item, indent + '  ')}"
            if isinstance(item, dict | list)
            else f"{indent}- {_scalar(item)}"
            for item in payload
        )
    return f"{indent}{_scalar(payload)}"


def _scalar(value: Any) -> str:
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return as_text(dataclasses.asdict(value))
    return json.dumps(value, default=_default) if not isinstance(value, str) else value


def emit(payload: Any, *, as_json: bool, text: str | None = None) -> None:
    out = to_json(payload) if as_json else (text if text is not None else as_text(payload))
    sys.stdout.write(out.rstrip("\n") + "\n")


def fail(err: OpsError, *, as_json: bool) -> int:
    sys.stderr.write(f"error: {err}\n")
    if as_json:
        emit({"error": {"code": err.code, "message": str(err)}}, as_json=True)
    return int(err.exit_code)


Work = Callable[[Settings], Coroutine[Any, Any, Any]]


def run_command(
    args: argparse.Namespace,
    work: Work,
    *,
    need_db: bool = True,
    render: Callable[[Any], str] | None = None,
    exit_code: Callable[[Any], ExitCode] = lambda payload: ExitCode.OK,
    settings: Settings | None = None,
) -> int:
    """Run one ops command: settings (found, unless given), the work, output, and every
    failure to its exit code."""
    as_json = bool(getattr(args, "json", False))
    configure_logging("WARNING", "console")
    try:
        if settings is None:
            settings = settings_for(args, need_db=need_db)
        payload = asyncio.run(work(settings))
    except OpsError as err:
        return fail(err, as_json=as_json)
    except ConfigError as err:
        return fail(MissingConfig(str(err)), as_json=as_json)
    except (Unavailable, OSError, nats.errors.Error, TimeoutError) as err:
        return fail(ServiceUnavailable(f"service unavailable: {err!r}"), as_json=as_json)
    emit(payload, as_json=as_json, text=render(payload) if render and not as_json else None)
    return int(exit_code(payload))
