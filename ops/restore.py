"""Restore a `collab backup` directory: `collab restore DIR`.

Targets, in this order:
* the services named by the environment (`DATABASE_URL`, `NATS_URL`), which must be empty: a
  database without tables and a NATS without the streams (refused otherwise, exit 73 — a restore
  never merges into live data);
* else the data dir (`--data-dir`, `COLLAB_DATA_DIR`, `./.collab-data`): with no `collab dev`
  running there, the embedded services are started in it for the restore and stopped after, so
  `collab dev --data-dir D` then serves the restored state. A running `collab dev` has migrated
  and created its streams, so it is refused like any non-empty target.

Files are checked against the manifest's checksums before anything is written. Postgres comes
back with `pg_restore --single-transaction`, the streams through JetStream's restore API at the
replica count of this environment (`COLLAB_STREAM_REPLICAS`), so a backup of a 3-node cluster
restores onto one dev server and back.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
from pathlib import Path
from typing import Any

import nats.js.errors

from ops._runtime import (
    NotFoundError,
    OpsContext,
    OpsError,
    TargetNotEmpty,
    TransferFailed,
    add_common_arguments,
    fail,
    ops_context,
    run_command,
)
from ops.backup_format import MANIFEST, Manifest, damaged_files, postgres_tool
from ops.stream_snapshot import StreamSnapshotError, restore_stream
from server.dev_services import StaleServicesFile, find_running
from server.embedded import EmbeddedStack
from server.settings import Settings


def configure_parser(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("dir", type=Path, help="a directory written by `collab backup`")
    add_common_arguments(parser)


def load_manifest(directory: Path) -> Manifest:
    if not (directory / MANIFEST).is_file():
        raise NotFoundError(f"{directory} holds no finished backup ({MANIFEST} missing)")
    try:
        manifest = Manifest.read(directory)
    except (ValueError, KeyError, TypeError) as err:
        raise OpsError(f"{directory / MANIFEST}: {err}") from err
    damaged = damaged_files(directory, manifest)
    if damaged:
        raise TransferFailed(f"damaged or missing in {directory}: {', '.join(damaged)}")
    return manifest


async def require_empty(ctx: OpsContext, manifest: Manifest) -> None:
    tables = await ctx.db.fetchval(
        "SELECT count(*) FROM pg_tables WHERE schemaname = current_schema()"
    )
    if tables:
        raise TargetNotEmpty(
            f"the database already has {tables} tables; restore needs an empty one"
        )
    existing = [s.name for s in manifest.streams if await _stream_exists(ctx, s.name)]
    if existing:
        raise TargetNotEmpty(f"NATS already has the streams {', '.join(existing)}")


async def _stream_exists(ctx: OpsContext, name: str) -> bool:
    try:
        await ctx.nats.nc.jetstream().stream_info(name)
    except nats.js.errors.NotFoundError:
        return False
    return True


async def restore_postgres(database_url: str, directory: Path, manifest: Manifest) -> None:
    argv = [postgres_tool("pg_restore"), "--no-owner", "--no-privileges", "--exit-on-error"]
    argv += ["--single-transaction", f"--dbname={database_url}"]
    proc = await asyncio.create_subprocess_exec(
        *argv,
        str(directory / manifest.postgres.file),
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.PIPE,
    )
    _out, err = await proc.communicate()
    if proc.returncode != 0:
        raise TransferFailed(f"pg_restore failed ({proc.returncode}): {err.decode().strip()}")


async def restore(settings: Settings, directory: Path, manifest: Manifest) -> dict[str, Any]:
    async with ops_context(settings) as ctx:
        await require_empty(ctx, manifest)
        await restore_postgres(settings.database_url, directory, manifest)
        streams = {}
        for archive in manifest.streams:
            config = {**archive.config, "num_replicas": settings.stream_replicas}
            try:
                state = await restore_stream(ctx.nats.nc, archive, directory, config)
            except StreamSnapshotError as err:
                raise TransferFailed(str(err)) from err
            streams[archive.name] = {k: state.get(k) for k in ("messages", "last_seq")}
    return {"dir": str(directory), "created_at": manifest.created_at, "streams": streams}


def _target(args: argparse.Namespace) -> Settings | Path:
    """The environment's services, or the data dir to start the embedded ones in."""
    env = Settings.from_env()
    if env.database_url and env.nats_url:
        return env
    data_dir = (args.data_dir or env.data_dir).resolve()
    try:
        running = find_running(data_dir)
    except StaleServicesFile:
        running = None  # that instance is gone; its data dir can be restored into
    if running is not None:
        return env.with_services(running.database_url, running.nats_url, running.redis_url)
    return data_dir


def run(args: argparse.Namespace) -> int:
    directory = args.dir.resolve()
    try:
        manifest = load_manifest(directory)
        target = _target(args)
    except OpsError as err:
        return fail(err, as_json=args.json)
    if isinstance(target, Settings):
        return run_command(args, lambda s: restore(s, directory, manifest), settings=target)
    stack = EmbeddedStack(target).start()
    try:
        settings = Settings.from_env().with_services(
            stack.postgres.url(), stack.nats.url, stack.redis.url
        )
        settings = dataclasses.replace(settings, data_dir=target)
        return run_command(args, lambda s: restore(s, directory, manifest), settings=settings)
    finally:
        stack.stop()
