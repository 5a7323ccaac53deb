"""The blocks projection follows live editor edits within seconds (not only at snapshot time):
a BlockNote client types over y-websocket, nobody calls REST or snapshots, and the projection
shows the blocks (services/projection_refresher.py)."""

from __future__ import annotations

import asyncio
import dataclasses
import time

import pycrdt
import pytest

from models.repo import doc_content as content_repo
from services.doc_state import DocState, load_state
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


async def test_a_refresh_takes_the_entries_after_its_last_state_from_the_room(api, ctx, ws_port):
    """The refresher keeps the state it projected; the next refresh of that document takes the
    entries after it from the document's room here (which applied them moments ago) and reads
    nothing from the log -- and the projection is the same as a full read's."""
    before = await refreshes(api)
    run = await refresh_twice(ctx, ws_port, tail_entries=None)
    assert run.reads == [0]  # only the first refresh read the log (snapshot + log)
    await assert_same_as_a_full_read(ctx, run)
    after = await refreshes(api)  # what an operator sees at /metrics
    assert after["room"] > before["room"] and after["full"] > before["full"]
    assert after["log"] == before["log"]


async def test_a_refresh_reads_the_log_after_its_last_state_when_the_room_lacks_entries(
    api, ctx, ws_port
):
    """More edits in a period than the room's tail holds (here: it holds none): the refresh reads
    the log from where its last state ended, not from the snapshot again."""
    before = await refreshes(api)
    run = await refresh_twice(ctx, ws_port, tail_entries=0)
    assert run.kept.seq > 0 and run.reads[0] == 0 and run.kept.seq in run.reads
    await assert_same_as_a_full_read(ctx, run)
    after = await refreshes(api)
    assert after["log"] > before["log"] and after["room"] == before["room"]


async def refreshes(api) -> dict[str, float]:  # type: ignore[no-untyped-def]
    """`collab_projection_refreshes_total` by `read`, from the node's /metrics."""
    scrape = (await api.get("/metrics")).body
    found = dict.fromkeys(("room", "log", "full"), 0.0)
    for read in found:
        prefix = f'collab_projection_refreshes_total{{read="{read}"}} '
        line = next((line for line in scrape.splitlines() if line.startswith(prefix)), None)
        found[read] = float(line[len(prefix) :]) if line else 0.0
    return found


@dataclasses.dataclass(frozen=True)
class TwoRefreshes:
    doc_id: str
    reads: list[int]  # where each read of the document's log started
    kept: DocState  # the state the first refresh kept
    now: DocState  # the state the second one kept
    rows: dict


async def refresh_twice(ctx, ws_port, tail_entries: int | None) -> TwoRefreshes:  # type: ignore[no-untyped-def]
    """A BlockNote client types, the refresher projects it, the client types again and the
    refresher projects that; what was read from the log meanwhile and the states kept.
    `tail_entries`: how many entries the document's room keeps for the refresher."""
    refresher = next(c for c in ctx.components if isinstance(c, ProjectionRefresher))
    setup = await document_with(ctx, "editor")
    reads: list[tuple[str, int]] = []
    real_read = ctx.doc_log.read

    async def recording_read(doc_id: str, after_seq: int):  # type: ignore[no-untyped-def]
        reads.append((doc_id, after_seq))
        return await real_read(doc_id, after_seq)

    ctx.doc_log.read = recording_read
    try:
        async with YjsNodeClients() as clients:
            await connected(clients, setup, ws_port, "ada")
            if tail_entries is not None:
                ctx.rooms.rooms[setup.doc_id].recent.max_entries = tail_entries
            await clients.editor_write("ada", "blocknote", BLOCKNOTE_DOC)
            await rows_when(ctx, setup.doc_id, lambda r: "c2" in r)
            kept = await kept_state(refresher, setup.doc_id)
            await clients.editor_append("ada", "h1", " typed live")
            rows = await rows_when(
                ctx, setup.doc_id, lambda r: r["h1"]["text"] == "Plan typed live"
            )
    finally:
        ctx.doc_log.read = real_read
    now = await kept_state(refresher, setup.doc_id, after_seq=kept.seq)
    ours = [after for doc_id, after in reads if doc_id == setup.doc_id]
    return TwoRefreshes(setup.doc_id, ours, kept, now, rows)


async def assert_same_as_a_full_read(ctx, run: TwoRefreshes) -> None:  # type: ignore[no-untyped-def]
    full = await load_state(ctx.db, ctx.doc_log, run.doc_id)
    assert run.now.seq == full.seq and run.rows["h1"]["text"] == "Plan typed live"
    assert state_vector(run.now.update) == state_vector(full.update)


async def kept_state(
    refresher: ProjectionRefresher, doc_id: str, after_seq: int = 0, timeout_s: float = 5.0
) -> DocState:
    """The state the refresher keeps for `doc_id` once it is past `after_seq`: it is stored just
    after the projection's rows are committed (and taken out while a refresh runs), so a reader
    that saw the rows waits for it."""
    deadline = time.monotonic() + timeout_s
    while (kept := refresher._states.get(doc_id)) is None or kept.seq <= after_seq:
        assert time.monotonic() < deadline, "the refresher never kept the state it projected"
        await asyncio.sleep(0.01)
    return kept


def state_vector(update: bytes) -> bytes:
    doc = pycrdt.Doc()
    doc.apply_update(update)
    return doc.get_state()
