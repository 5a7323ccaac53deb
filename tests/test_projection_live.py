"""The blocks projection follows live editor edits within seconds (not only at snapshot time):
a BlockNote client types over y-websocket, nobody calls REST or snapshots, and the projection
shows the blocks (services/projection_refresher.py)."""

from __future__ import annotations

import asyncio
import dataclasses
import time

import pytest

from models.repo import doc_content as content_repo
from services.projection_refresher import ProjectionRefresher
from tests.realtime_support import document_with
from tests.test_editor_content import BLOCKNOTE_DOC, connected
from tests.yjs_client import YjsNodeClients

pytestmark = pytest.mark.timeout(90)

REFRESH_S = 0.3


@pytest.fixture
def settings(settings):  # type: ignore[no-untyped-def]
    return dataclasses.replace(settings, projection_refresh_s=REFRESH_S)


async def rows_when(ctx, doc_id: str, check, timeout_s: float = 5.0) -> dict:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout_s
    while True:
        rows = {r["block_id"]: r for r in await content_repo.list_blocks(ctx.db, doc_id)}
        if check(rows):
            return rows
        assert time.monotonic() < deadline, f"projection never matched: {sorted(rows)}"
        await asyncio.sleep(0.05)


async def test_projection_follows_live_edits(api, ctx, ws_port):
    assert any(isinstance(c, ProjectionRefresher) for c in ctx.components)
    setup = await document_with(ctx, "editor")
    async with YjsNodeClients() as clients:
        await connected(clients, setup, ws_port, "ada")
        started = time.monotonic()
        await clients.editor_write("ada", "blocknote", BLOCKNOTE_DOC)
        rows = await rows_when(ctx, setup.doc_id, lambda r: "c2" in r)
        assert time.monotonic() - started < 5
        assert rows["c2"]["parent_id"] == "p1" and rows["c2"]["text"] == "line one\nline two"

        await clients.editor_append("ada", "h1", " typed live")
        rows = await rows_when(ctx, setup.doc_id, lambda r: r["h1"]["text"] == "Plan typed live")
        await clients.editor_write("ada", "blocknote", [{"id": "only", "type": "paragraph"}])
        rows = await rows_when(ctx, setup.doc_id, lambda r: set(r) == {"only"})
