"""Print a document's content rebuilt from its Postgres snapshot plus the log after it.

The same path a joining room takes (`services.doc_state.load_state`), so it answers "what would a
fresh client see now?" without a client. `--state` also prints the merged Yjs update (hex).
"""

from __future__ import annotations

import argparse
from typing import Any

from models.repo import documents as documents_repo
from ops._runtime import (
    add_common_arguments,
    doc_id_arg,
    ops_context,
    require_document,
    run_command,
)
from server.settings import Settings
from services.doc_content import to_json
from services.doc_state import load_state


def configure_parser(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--doc", type=doc_id_arg, required=True, help="a document id")
    parser.add_argument("--state", action="store_true", help="include the merged update (hex)")
    add_common_arguments(parser)


async def replay(settings: Settings, doc_id: str, with_state: bool) -> dict[str, Any]:
    async with ops_context(settings) as ctx:
        await require_document(ctx, doc_id)
        state = await load_state(ctx.db, ctx.doc_log, doc_id)
        fragment = await documents_repo.get_fragment(ctx.db, doc_id) or settings.content_fragment
    payload: dict[str, Any] = {
        "doc_id": doc_id,
        "version": state.seq,
        "snapshot_seq": state.snapshot_seq,
        "replayed_updates": len(state.entries),
        "content": to_json(state.update, fragment),
    }
    if with_state:
        payload["state"] = state.update.hex()
    return payload


def run(args: argparse.Namespace) -> int:
    return run_command(args, lambda settings: replay(settings, args.doc, args.state))
