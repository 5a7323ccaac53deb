"""Rebuild the `blocks` projection from the CRDT: `collab reindex --doc ID | --all`.

The projection is a cache of the document (DESIGN.md §5); when `collab verify` finds it
disagreeing, or after a change to the projection code, this rebuilds it from snapshot + log at
the log's current sequence. The projection's sequence fence is reset first (in the same
transaction), so the rebuild replaces rows even at an unchanged sequence; a concurrent refresh at
a newer sequence still wins afterwards.
"""

from __future__ import annotations

import argparse
from typing import Any

from models.repo import doc_content as content_repo
from ops._runtime import (
    OpsContext,
    add_common_arguments,
    add_doc_or_all,
    ops_context,
    require_document,
    run_command,
)
from ops.exit_codes import ExitCode
from ops.verify import all_doc_ids
from server.settings import Settings
from services.doc_state import load_state
from services.projection import compute_projection, write_projection
from services.unit_of_work import UnitOfWork


def configure_parser(parser: argparse.ArgumentParser) -> None:
    add_doc_or_all(parser)
    add_common_arguments(parser)


async def reindex_doc(ctx: OpsContext, doc_id: str) -> dict[str, Any]:
    state = await load_state(ctx.db, ctx.doc_log, doc_id)
    fragment = ctx.settings.content_fragment
    worker = ctx.projection_worker
    projection = await compute_projection(worker, ctx.db, doc_id, state.seq, state.update, fragment)
    async with ctx.db.transaction() as conn:
        await content_repo.reset_projection(conn, doc_id)
        # Anchor events it stages are published by the nodes' outbox relay job.
        written = projection is not None and await write_projection(
            UnitOfWork(conn), doc_id, state.seq, projection
        )
    return {"doc_id": doc_id, "seq": state.seq, "rebuilt": written}


async def reindex(settings: Settings, args: argparse.Namespace) -> dict[str, Any]:
    async with ops_context(settings) as ctx:
        if args.doc:
            await require_document(ctx, args.doc)
            doc_ids = [args.doc]
        else:
            doc_ids = await all_doc_ids(ctx)
        results = [await reindex_doc(ctx, doc_id) for doc_id in doc_ids]
    return {"documents": len(results), "results": results}


def run(args: argparse.Namespace) -> int:
    """Exit 2 when a document's state could not be projected (unreadable: see `verify`)."""
    return run_command(
        args,
        lambda settings: reindex(settings, args),
        exit_code=lambda payload: (
            ExitCode.OK if all(r["rebuilt"] for r in payload["results"]) else ExitCode.CRITICAL
        ),
    )
