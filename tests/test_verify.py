"""`collab verify` and `collab reindex` through the real CLI against a running node (issue 13
item 5): a document held by a live room on the test's node, compacted once, with a log tail.
Injected mismatches — a projection row edited behind the CRDT's back, a snapshot that no longer
matches the log the room was built from — must be reported with exit 2; reindex repairs the
projection."""

from __future__ import annotations

import dataclasses
import json
import uuid

import pycrdt
import pytest

from ops.exit_codes import ExitCode
from services.snapshots import snapshot_document
from tests.documents_support import Writer, make_doc_row
from tests.test_ops_documents import collab


@pytest.fixture
def settings(settings):  # type: ignore[no-untyped-def]
    # The room must stay loaded across several CLI runs (each a fresh Python process).
    return dataclasses.replace(settings, room_unload_grace_s=600.0)


def checks(payload: dict, name: str) -> list[dict]:
    (report,) = payload["reports"]
    return [c for c in report["checks"] if c["check"] == name]


async def verify(settings, doc_id: str) -> tuple[int, dict]:  # type: ignore[no-untyped-def]
    code, out, err = await collab(settings, "verify", "--doc", doc_id, "--json")
    assert code in (ExitCode.OK, ExitCode.CRITICAL), err
    return code, json.loads(out)


async def test_verify_finds_injected_mismatches_and_reindex_repairs(ctx, settings):
    writer = Writer(ctx.doc_log, await make_doc_row(ctx))
    doc_id = writer.doc_id
    room = await ctx.rooms.acquire(doc_id)
    await writer.add_block("b1", "first block")
    await writer.add_block("b2", "second block")
    assert (await snapshot_document(ctx, doc_id)).status == "snapshotted"
    last = await writer.add_block("b3", "only in the log tail")
    assert await room.wait_applied(last, 5)

    code, payload = await verify(settings, doc_id)
    assert code == ExitCode.OK, payload
    (live,) = checks(payload, "live_room")
    assert live["ok"] and live["node"] == ctx.node_id and live["seq"] == last
    assert checks(payload, "projection")[0]["ok"]

    await ctx.db.execute(
        "UPDATE blocks SET text = 'tampered' WHERE document_id = $1 AND block_id = 'b2'", doc_id
    )
    code, payload = await verify(settings, doc_id)
    assert code == ExitCode.CRITICAL
    (projection,) = checks(payload, "projection")
    assert not projection["ok"] and "b2" in projection["detail"]
    assert checks(payload, "live_room")[0]["ok"]  # only the projection is wrong

    code, out, err = await collab(settings, "reindex", "--doc", doc_id, "--json")
    assert code == 0, err
    assert json.loads(out)["results"][0]["rebuilt"] is True
    code, payload = await verify(settings, doc_id)
    assert code == ExitCode.OK, payload

    other = pycrdt.Doc()
    other.get("text", type=pycrdt.Text).insert(0, "not this document")
    original = await ctx.db.fetchval(
        "SELECT state FROM document_snapshots WHERE document_id = $1", doc_id
    )
    await ctx.db.execute(
        "UPDATE document_snapshots SET state = $2 WHERE document_id = $1",
        doc_id,
        other.get_update(),
    )
    code, payload = await verify(settings, doc_id)
    assert code == ExitCode.CRITICAL
    (live,) = checks(payload, "live_room")
    assert not live["ok"] and "differs from the live room" in live["detail"]

    code, out, _ = await collab(settings, "verify", "--doc", doc_id)
    assert code == ExitCode.CRITICAL and "FAIL live_room" in out
    await ctx.db.execute(  # leave the shared database consistent for `verify --all`
        "UPDATE document_snapshots SET state = $2 WHERE document_id = $1", doc_id, original
    )


async def test_verify_all_and_unknown_ids(ctx, settings):
    writer = Writer(ctx.doc_log, await make_doc_row(ctx))
    await writer.type_text("no room loaded anywhere")
    code, out, err = await collab(settings, "verify", "--all", "--json")
    payload = json.loads(out)
    # The session database holds other tests' documents (some broken on purpose): only this
    # one's verdict and the report's shape are asserted.
    assert payload["documents"] >= 1
    assert code == (ExitCode.OK if payload["failed"] == 0 else ExitCode.CRITICAL), err
    assert all(not r["ok"] for r in payload["reports"])  # only failures are listed
    assert writer.doc_id not in {r["doc_id"] for r in payload["reports"]}
    code, out, _ = await collab(settings, "verify", "--doc", str(uuid.uuid4()), "--json")
    assert code == ExitCode.NOT_FOUND
    code, _out, _err = await collab(settings, "verify")
    assert code == ExitCode.USAGE  # --doc or --all
