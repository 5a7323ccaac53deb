"""Inspect the document stream and its consumers, or one document's log and compaction state.

Without `--doc`: the COLLAB_DOCS config and state and its consumers (rooms hold ordered
consumers; a long list of stale ones points at leaking rooms). With `--doc ID`: how many updates
the document has in the log, its last seq, its snapshot seq, what the snapshot job last purged,
and the first stored seq (which must be ≤ snapshot seq + 1 while the one-behind overlap is kept).
"""

from __future__ import annotations

import argparse
from typing import Any

from bus.doc_usage import stream_usage, subject_counts
from bus.jetstream import DOCS_STREAM, doc_update_subject
from models.repo import doc_content as content_repo
from models.repo import doc_snapshots
from ops._runtime import (
    OpsContext,
    add_common_arguments,
    doc_id_arg,
    ops_context,
    require_document,
    run_command,
)
from server.settings import Settings

MAX_CONSUMERS_LISTED = 200


def configure_parser(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--doc", type=doc_id_arg, help="a document id")
    add_common_arguments(parser)


async def inspect_stream(ctx: OpsContext) -> dict[str, Any]:
    usage = await stream_usage(ctx.nats)
    consumers = await ctx.nats.jetstream.consumers_info(DOCS_STREAM)
    return {
        "stream": usage,
        "consumers": [
            {
                "name": c.name,
                "filter_subject": c.config.filter_subject,
                "delivered_stream_seq": c.delivered.stream_seq if c.delivered else None,
                "num_pending": c.num_pending,
                "push_bound": c.push_bound,
            }
            for c in consumers[:MAX_CONSUMERS_LISTED]
        ],
        "consumer_count": len(consumers),
    }


async def inspect_doc(ctx: OpsContext, doc_id: str) -> dict[str, Any]:
    await require_document(ctx, doc_id)
    doc_log = ctx.doc_log
    entries_count = (await subject_counts(ctx.nats)).get(doc_update_subject(doc_id), 0)
    first_seq = None
    if entries_count:
        first = await ctx.nats.jetstream.get_msg(
            DOCS_STREAM, seq=1, subject=doc_update_subject(doc_id), next=True
        )
        first_seq = first.seq
    compaction = await content_repo.get_compaction(ctx.db, doc_id)
    return {
        "doc_id": doc_id,
        "stored_updates": entries_count,
        "first_seq": first_seq,
        "last_seq": await doc_log.last_seq(doc_id),
        "snapshot_seq": await doc_snapshots.get_snapshot_seq(ctx.db, doc_id),
        "compaction": compaction,
        "projection_seq": await content_repo.projection_seq(ctx.db, doc_id),
    }


async def inspect(settings: Settings, doc_id: str | None) -> dict[str, Any]:
    async with ops_context(settings, need_db=doc_id is not None) as ctx:
        return await (inspect_doc(ctx, doc_id) if doc_id else inspect_stream(ctx))


def run(args: argparse.Namespace) -> int:
    return run_command(
        args, lambda settings: inspect(settings, args.doc), need_db=args.doc is not None
    )
