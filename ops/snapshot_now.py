"""Snapshot one document now (`--doc ID`), or every dirty document (`--all-dirty`).

Runs the same `services.snapshots.snapshot_document` as the scheduler's job and the rooms: the
per-document advisory lock makes it safe while nodes are running. `--tight` purges through the new
snapshot (no overlap): for a stream at its limits only.
"""

from __future__ import annotations

import argparse
import dataclasses
from typing import Any

from ops._runtime import (
    add_common_arguments,
    doc_id_arg,
    ops_context,
    require_document,
    run_command,
)
from server.settings import Settings
from services import snapshot_job
from services.snapshots import snapshot_document


def configure_parser(parser: argparse.ArgumentParser) -> None:
    target = parser.add_mutually_exclusive_group(required=True)
    target.add_argument("--doc", type=doc_id_arg, help="a document id")
    target.add_argument("--all-dirty", action="store_true", help="every dirty document")
    parser.add_argument("--min-updates", type=int, help="backlog threshold (--all-dirty)")
    parser.add_argument("--limit", type=int, help="at most this many documents (--all-dirty)")
    parser.add_argument("--tight", action="store_true", help="purge through the new snapshot")
    add_common_arguments(parser)


async def snapshot_now(settings: Settings, args: argparse.Namespace) -> dict[str, Any]:
    if args.min_updates is not None:
        settings = dataclasses.replace(settings, snapshot_min_updates=args.min_updates)
    if args.limit is not None:
        settings = dataclasses.replace(settings, snapshot_max_docs_per_run=args.limit)
    async with ops_context(settings) as ctx:
        if args.doc:
            await require_document(ctx, args.doc)
            result = await snapshot_document(ctx, args.doc, tight=args.tight)
            return {"snapshots": [result]}
        report = await snapshot_job.snapshot_dirty(ctx)
        return dataclasses.asdict(report)


def run(args: argparse.Namespace) -> int:
    return run_command(args, lambda settings: snapshot_now(settings, args))
