"""Snapshots and compaction on the real stack: acceptance replay, fault points (R7/R8), racing
runners (R9), joiners during snapshot+purge (R15-lite), pending structs (R16), purge edges (R22),
outages (R6), projection, automatic version retention, the dirty-document job."""

from __future__ import annotations

import asyncio
import dataclasses
import time
import uuid

import pycrdt
import pytest

from bus.doc_log import DocLog
from bus.doc_usage import subject_counts
from bus.jetstream import doc_update_subject
from core.errors import Unavailable
from models.repo import doc_content as content_repo
from models.repo import doc_snapshots
from server.app import build_context
from services import snapshot_job
from services.doc_content import to_json
from services.doc_state import load_state
from services.snapshots import SnapshotHooks, snapshot_document
from tests.content_docs import PARAGRAPH_PROPS
from tests.documents_support import (
    Writer,
    fresh_content,
    make_doc_row,
    root_text,
    same_state,
)


class SpyLog(DocLog):
    """The real DocLog, recording purge calls (R22: never a purge at seq ≤ 1)."""

    def __init__(self, inner: DocLog) -> None:
        super().__init__(inner.nats, inner.node_id)
        self.purges: list[tuple[str, int]] = []

    async def purge_through(self, doc_id: str, seq: int) -> None:
        self.purges.append((doc_id, seq))
        await super().purge_through(doc_id, seq)


@pytest.fixture
def doc_log(ctx) -> SpyLog:
    spy = SpyLog(ctx.doc_log)
    ctx.doc_log = spy
    return spy


async def stored(ctx, doc_id: str) -> int:
    return (await subject_counts(ctx.nats)).get(doc_update_subject(doc_id), 0)


async def writer_for(ctx, doc_log) -> Writer:
    return Writer(doc_log, await make_doc_row(ctx))


async def assert_fresh_equals_live(ctx, doc_log, writer: Writer) -> None:
    state = await load_state(ctx.db, doc_log, writer.doc_id)
    assert same_state(state.update, writer.doc.get_update())


# --- acceptance ---------------------------------------------------------------------------------


async def test_thousands_of_updates_snapshotted_purged_and_replayed(ctx, doc_log):
    """Acceptance: 3000 small updates, snapshots while they arrive, purges; a fresh replay
    (snapshot + the rest of the log) equals the live state exactly."""
    writer = await writer_for(ctx, doc_log)
    for i in range(3000):
        if i % 10 == 0:
            await writer.add_block(f"b{i}", f"block {i}")
        else:
            await writer.type_text(f"{i % 10}")
        if i in (999, 1999):
            result = await snapshot_document(ctx, writer.doc_id)
            assert result.status == "snapshotted"
    final = await snapshot_document(ctx, writer.doc_id)
    assert final.status == "snapshotted" and final.purged_through == final.prev_seq > 0
    # The log keeps only the overlap behind the newest snapshot.
    assert await stored(ctx, writer.doc_id) == final.updates
    await assert_fresh_equals_live(ctx, doc_log, writer)
    content = await fresh_content(ctx, doc_log, writer.doc_id)
    assert len(content["blocks"]) == 300 and content["blocks"][-1]["text"] == "block 2990"
    assert (await snapshot_document(ctx, writer.doc_id)).status == "up_to_date"


async def test_purge_runs_one_snapshot_behind(ctx, doc_log):
    writer = await writer_for(ctx, doc_log)
    for i in range(3):
        await writer.type_text(str(i))
    first = await snapshot_document(ctx, writer.doc_id)
    assert (first.prev_seq, first.purged_through) == (0, 0)
    assert await stored(ctx, writer.doc_id) == 3  # nothing purged yet: a joiner may hold S=0
    for i in range(2):
        await writer.type_text(str(i))
    second = await snapshot_document(ctx, writer.doc_id)
    assert second.prev_seq == first.seq and second.purged_through == first.seq
    assert await stored(ctx, writer.doc_id) == 2  # (S_prev, S_new] kept
    assert doc_log.purges == [(writer.doc_id, first.seq)]
    await assert_fresh_equals_live(ctx, doc_log, writer)


# --- R7/R8: faults at every step ------------------------------------------------------------------


async def kill_backend(ctx, conn) -> None:
    await ctx.db.execute("SELECT pg_terminate_backend($1)", conn.get_server_pid())


class NodeDied(Exception):
    """Stands for the process dying at that point: nothing after it runs."""


@pytest.mark.parametrize("step", ["before_write", "after_write", "before_commit"])
async def test_connection_killed_before_commit_loses_nothing(ctx, doc_log, step):
    """R7: the snapshot connection is terminated; nothing is committed, nothing purged."""
    writer = await writer_for(ctx, doc_log)
    for i in range(3):
        await writer.type_text(str(i))
    first = await snapshot_document(ctx, writer.doc_id)
    await writer.type_text("x")

    async def kill(conn) -> None:
        await kill_backend(ctx, conn)

    purges_before = list(doc_log.purges)
    with pytest.raises(Unavailable):
        await snapshot_document(ctx, writer.doc_id, hooks=SnapshotHooks(**{step: kill}))
    assert await doc_snapshots.get_snapshot_seq(ctx.db, writer.doc_id) == first.seq
    assert doc_log.purges == purges_before
    await assert_fresh_equals_live(ctx, doc_log, writer)
    # The lock died with the connection; the next run is complete and idempotent.
    again = await snapshot_document(ctx, writer.doc_id)
    assert again.status == "snapshotted" and again.purged_through == first.seq
    await assert_fresh_equals_live(ctx, doc_log, writer)


@pytest.mark.parametrize("step", ["after_commit", "before_purge"])
async def test_crash_after_commit_before_purge_is_finished_by_next_run(ctx, doc_log, step):
    """R7/R8: committed but never purged: the snapshot stands, the next run purges behind it."""
    writer = await writer_for(ctx, doc_log)
    for i in range(3):
        await writer.type_text(str(i))
    first = await snapshot_document(ctx, writer.doc_id)
    await writer.type_text("x")

    async def die(_conn) -> None:
        raise NodeDied

    with pytest.raises(NodeDied):
        await snapshot_document(ctx, writer.doc_id, hooks=SnapshotHooks(**{step: die}))
    committed = await doc_snapshots.get_snapshot_seq(ctx.db, writer.doc_id)
    assert committed > first.seq
    assert doc_log.purges == []  # purge only after a confirmed commit, and it never happened
    compaction = await content_repo.get_compaction(ctx.db, writer.doc_id)
    assert compaction.purge_pending
    await assert_fresh_equals_live(ctx, doc_log, writer)
    dirty = await snapshot_job.find_dirty(ctx, min_updates=10**9, limit=10)
    assert writer.doc_id in [d.doc_id for d in dirty]  # picked although below the threshold
    again = await snapshot_document(ctx, writer.doc_id)
    assert (again.status, again.seq, again.purged_through) == ("up_to_date", committed, first.seq)
    assert not (await content_repo.get_compaction(ctx.db, writer.doc_id)).purge_pending
    await assert_fresh_equals_live(ctx, doc_log, writer)


@pytest.mark.parametrize("step", ["before_write", "after_write", "before_commit", "before_purge"])
async def test_node_killed_mid_snapshot_task_cancelled(ctx, doc_log, step):
    """R8 (in-process stand-in for SIGKILL): the snapshot task is cancelled at each step."""
    writer = await writer_for(ctx, doc_log)
    for i in range(4):
        await writer.type_text(str(i))
    await snapshot_document(ctx, writer.doc_id)
    await writer.type_text("y")
    started = asyncio.Event()

    async def stall(_conn) -> None:
        started.set()
        await asyncio.Event().wait()

    task = asyncio.ensure_future(
        snapshot_document(ctx, writer.doc_id, hooks=SnapshotHooks(**{step: stall}))
    )
    await asyncio.wait_for(started.wait(), 5)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    await assert_fresh_equals_live(ctx, doc_log, writer)
    again = await snapshot_document(ctx, writer.doc_id)
    assert again.status in ("snapshotted", "up_to_date")
    assert (
        await doc_snapshots.get_snapshot_seq(ctx.db, writer.doc_id)
        == (await load_state(ctx.db, doc_log, writer.doc_id)).seq
    )
    await assert_fresh_equals_live(ctx, doc_log, writer)


# --- R9: racing runners ----------------------------------------------------------------------------


async def test_concurrent_runs_make_one_snapshot(ctx, doc_log):
    writer = await writer_for(ctx, doc_log)
    for i in range(5):
        await writer.type_text(str(i))
    inside, release = asyncio.Event(), asyncio.Event()

    async def hold(_conn) -> None:
        inside.set()
        await release.wait()

    first = asyncio.ensure_future(
        snapshot_document(ctx, writer.doc_id, hooks=SnapshotHooks(before_write=hold))
    )
    await asyncio.wait_for(inside.wait(), 5)
    second = await snapshot_document(ctx, writer.doc_id)
    assert second.status == "locked"
    release.set()
    assert (await first).status == "snapshotted"
    versions = await ctx.db.fetchval(
        "SELECT count(*) FROM document_versions WHERE document_id = $1", writer.doc_id
    )
    assert versions == 1
    await assert_fresh_equals_live(ctx, doc_log, writer)


async def test_stale_runner_is_fenced_and_does_not_purge(ctx, doc_log):
    """A runner whose lock was lost (another node committed meanwhile) cannot move the snapshot
    backwards nor purge past what is committed."""
    writer = await writer_for(ctx, doc_log)
    for i in range(3):
        await writer.type_text(str(i))
    await writer.type_text("more")
    newer_seq = {}

    async def another_node_wins(_conn) -> None:
        await writer.type_text("late")
        state = await load_state(ctx.db, doc_log, writer.doc_id)
        newer_seq["seq"] = state.seq
        assert await doc_snapshots.save_snapshot(
            ctx.db,
            writer.doc_id,
            seq=state.seq,
            state=state.update,
            state_vector=b"",
            update_count=1,
        )

    stale = await snapshot_document(
        ctx, writer.doc_id, hooks=SnapshotHooks(before_write=another_node_wins)
    )
    assert stale.status == "fenced" and stale.purged_through == 0
    assert await doc_snapshots.get_snapshot_seq(ctx.db, writer.doc_id) == newer_seq["seq"]
    assert doc_log.purges == []
    await assert_fresh_equals_live(ctx, doc_log, writer)


# --- R15-lite: joiners during snapshot + purge ----------------------------------------------------


async def test_joiners_converge_while_snapshot_and_purge_loop(ctx, doc_log):
    writer = await writer_for(ctx, doc_log)
    states: dict[int, bytes] = {0: b""}
    deadline = time.monotonic() + 3.0
    mismatches: list[int] = []
    joins = 0

    async def edit() -> None:
        i = 0
        while time.monotonic() < deadline:
            seq = await writer.type_text(f"{i % 10}")
            states[seq] = writer.doc.get_update()
            i += 1

    async def compact() -> None:
        while time.monotonic() < deadline:
            await snapshot_document(ctx, writer.doc_id)
            await asyncio.sleep(0.02)

    async def join() -> None:
        nonlocal joins
        while time.monotonic() < deadline:
            state = await load_state(ctx.db, doc_log, writer.doc_id)
            joins += 1
            if state.seq in states and not same_state(state.update, states[state.seq]):
                mismatches.append(state.seq)
            await asyncio.sleep(0.01)

    await asyncio.gather(edit(), compact(), join(), join())
    assert mismatches == []
    assert joins >= 10 and len(doc_log.purges) >= 2  # the race was really exercised
    await assert_fresh_equals_live(ctx, doc_log, writer)


# --- R16, R22 ------------------------------------------------------------------------------------


async def test_pending_structs_survive_snapshot_purge_cycles(ctx, doc_log):
    """R16 through the job's path: U2 (depends on U1) alone, two snapshots + purge, then U1."""
    doc_id = await make_doc_row(ctx)
    source = Writer(doc_log, doc_id)
    before = source.doc.get_state()
    source.doc.get("text", type=pycrdt.Text).insert(0, "first ")
    u1 = source.doc.get_update(before)
    before = source.doc.get_state()
    source.doc.get("text", type=pycrdt.Text).insert(6, "second")
    u2 = source.doc.get_update(before)
    await source.publish(u2)
    await snapshot_document(ctx, doc_id)
    await source.publish(u2)  # a resend of the pending update
    second = await snapshot_document(ctx, doc_id)
    assert second.purged_through > 0
    await source.publish(u1)
    assert root_text(await fresh_content(ctx, doc_log, doc_id)) == "first second"
    await snapshot_document(ctx, doc_id)
    assert root_text(await fresh_content(ctx, doc_log, doc_id)) == "first second"


async def test_purge_never_below_two_and_never_touches_other_documents(ctx, doc_log):
    a, b = await writer_for(ctx, doc_log), await writer_for(ctx, doc_log)
    for i in range(4):
        await a.type_text(str(i))
        await b.type_text(str(i))
    await snapshot_document(ctx, a.doc_id)  # first snapshot: prev seq 0, no purge call at all
    assert doc_log.purges == []
    for i in range(3):
        await a.type_text(str(i))
        await b.type_text(str(i))
    await snapshot_document(ctx, a.doc_id)
    assert all(seq > 1 for _doc, seq in doc_log.purges)
    assert await stored(ctx, b.doc_id) == 7
    assert await stored(ctx, a.doc_id) == 3
    await assert_fresh_equals_live(ctx, doc_log, a)
    await assert_fresh_equals_live(ctx, doc_log, b)


async def test_missing_document_and_poison_update(ctx, doc_log):
    assert (await snapshot_document(ctx, str(uuid.uuid4()))).status == "missing"
    writer = await writer_for(ctx, doc_log)
    await writer.type_text("ok")
    await writer.publish(b"\xff\xfe not a yjs update")
    await writer.type_text("!")
    result = await snapshot_document(ctx, writer.doc_id)
    assert result.status == "snapshotted" and result.poison_skipped == 1
    snapshot = await doc_snapshots.get_snapshot(ctx.db, writer.doc_id)
    assert root_text(to_json(snapshot.state)) == "ok!"


async def test_a_poison_update_does_not_make_the_document_unreadable(ctx, doc_log):
    """S3 from a second terminal: bytes published straight to the subject. REST, search and the
    refresher read through `load_state`, before any snapshot has skipped them."""
    writer = await writer_for(ctx, doc_log)
    await writer.type_text("ok")
    await writer.publish(b"\xff\xfe not a yjs update")
    await writer.type_text("!")
    state = await load_state(ctx.db, doc_log, writer.doc_id)
    assert root_text(to_json(state.update)) == "ok!"


# --- R6: Postgres down ---------------------------------------------------------------------------


async def test_postgres_down_means_no_purge(ctx, doc_log, settings, io_loop):
    writer = await writer_for(ctx, doc_log)
    for i in range(3):
        await writer.type_text(str(i))
    await snapshot_document(ctx, writer.doc_id)
    await writer.type_text("x")
    dead_url = settings.database_url.rsplit(":", 1)[0] + ":1/collab"
    broken = build_context(dataclasses.replace(settings, database_url=dead_url))
    await broken.nats.start()
    broken.doc_log = doc_log
    try:
        started = time.monotonic()
        with pytest.raises(Unavailable):
            await snapshot_document(broken, writer.doc_id)
        with pytest.raises(Unavailable):
            await snapshot_job.snapshot_dirty(broken)
        assert time.monotonic() - started < 10
    finally:
        await broken.nats.stop()
    assert doc_log.purges == []
    await assert_fresh_equals_live(ctx, doc_log, writer)


# --- projection and automatic versions ------------------------------------------------------------


async def test_snapshot_refreshes_the_blocks_projection(ctx, doc_log):
    writer = await writer_for(ctx, doc_log)
    await writer.add_block("intro", "Hello")
    await writer.add_block("body", "World", block_type="heading")
    todo = {**PARAGRAPH_PROPS, "checked": True}
    seq = await writer.add_block("child", "nested", "checkListItem", parent="body", props=todo)
    await snapshot_document(ctx, writer.doc_id)
    assert await content_repo.projection_seq(ctx.db, writer.doc_id) == seq
    rows = {r["block_id"]: r for r in await content_repo.list_blocks(ctx.db, writer.doc_id)}
    assert set(rows) == {"intro", "body", "child"}
    assert (rows["child"]["parent_id"], rows["child"]["depth"], rows["child"]["path"]) == (
        "body",
        1,
        ["body", "child"],
    )
    assert rows["child"]["type"] == "checkListItem" and rows["child"]["text"] == "nested"
    assert rows["child"]["content"] == {
        "props": todo,
        "content": [{"type": "text", "text": "nested", "styles": {}}],
    }
    subtree = await ctx.db.fetch(
        "SELECT block_id FROM blocks WHERE document_id = $1 AND path @> ARRAY[$2]::text[]",
        writer.doc_id,
        "body",
    )
    assert {r["block_id"] for r in subtree} == {"body", "child"}
    found = await ctx.db.fetch(
        "SELECT block_id FROM blocks WHERE document_id = $1 AND content @> $2::jsonb",
        writer.doc_id,
        {"props": {"checked": True}},
    )
    assert [r["block_id"] for r in found] == ["child"]


async def test_automatic_versions_follow_the_retention_policy(ctx, doc_log):
    writer = await writer_for(ctx, doc_log)
    ctx.settings = dataclasses.replace(ctx.settings, auto_version_interval_s=3600)
    for round_ in range(3):
        await writer.type_text(str(round_))
        await snapshot_document(ctx, writer.doc_id)
    count = "SELECT count(*) FROM document_versions WHERE document_id = $1 AND kind = $2"
    assert await ctx.db.fetchval(count, writer.doc_id, "auto") == 1  # one per interval
    await ctx.db.execute(
        "INSERT INTO document_versions (document_id, seq, state, kind, name)"
        " VALUES ($1, 1, ''::bytea, 'named', 'keep me')",
        writer.doc_id,
    )
    ctx.settings = dataclasses.replace(
        ctx.settings, auto_version_interval_s=0, auto_versions_keep=3
    )
    results = []
    for round_ in range(5):
        await writer.type_text(str(round_))
        results.append(await snapshot_document(ctx, writer.doc_id))
    assert all(r.auto_version for r in results)
    assert await ctx.db.fetchval(count, writer.doc_id, "auto") == 3
    assert await ctx.db.fetchval(count, writer.doc_id, "named") == 1
    kept = await ctx.db.fetch(
        "SELECT seq FROM document_versions WHERE document_id = $1 AND kind = 'auto' ORDER BY seq",
        writer.doc_id,
    )
    assert [r["seq"] for r in kept] == [r.seq for r in results[-3:]]


# --- the job ---------------------------------------------------------------------------------------


async def test_job_snapshots_dirty_documents_over_the_threshold(ctx, doc_log):
    busy, quiet = await writer_for(ctx, doc_log), await writer_for(ctx, doc_log)
    for i in range(6):
        await busy.type_text(str(i))
    await quiet.type_text("q")
    ctx.settings = dataclasses.replace(
        ctx.settings, snapshot_min_updates=5, snapshot_max_docs_per_run=1000
    )
    docs, _orphans = await snapshot_job.scan(ctx)
    by_id = {d.doc_id: d for d in docs}
    assert by_id[busy.doc_id].new_msgs == 6 and by_id[quiet.doc_id].new_msgs == 1
    report = await snapshot_job.snapshot_dirty(ctx)
    done = {r.doc_id: r for r in report.snapshots}
    assert done[busy.doc_id].status == "snapshotted" and quiet.doc_id not in done
    for i in range(5):
        await busy.type_text(str(i))
    docs, _orphans = await snapshot_job.scan(ctx)
    assert {d.doc_id: d for d in docs}[busy.doc_id].new_msgs == 5  # overlap not counted
    await snapshot_job.snapshot_dirty(ctx)
    docs, _orphans = await snapshot_job.scan(ctx)
    assert {d.doc_id: d for d in docs}[busy.doc_id].new_msgs == 0
    await assert_fresh_equals_live(ctx, doc_log, busy)


async def test_job_is_bounded_and_largest_backlog_first(ctx, doc_log):
    writers = [await writer_for(ctx, doc_log) for _ in range(3)]
    for n, writer in enumerate(writers):
        for i in range(3 + n):
            await writer.type_text(str(i))
    docs, _orphans = await snapshot_job.scan(ctx)
    mine = [d for d in docs if d.doc_id in {w.doc_id for w in writers}]
    picked = snapshot_job.pick_dirty(mine, min_updates=3, limit=2)
    assert [d.doc_id for d in picked] == [writers[2].doc_id, writers[1].doc_id]


async def test_orphaned_subjects_are_purged_when_old(ctx, doc_log, monkeypatch):
    orphan = str(uuid.uuid4())
    writer = Writer(doc_log, orphan)
    await writer.type_text("nobody owns me")
    _docs, orphans = await snapshot_job.scan(ctx)
    assert orphan in orphans
    assert await snapshot_job.purge_orphans(ctx, [orphan]) == []  # too young
    monkeypatch.setattr(snapshot_job, "ORPHAN_MIN_AGE_S", -60.0)
    assert await snapshot_job.purge_orphans(ctx, [orphan]) == [orphan]
    assert await stored(ctx, orphan) == 0


# --- re-encoding (core/compaction.py) -----------------------------------------------------------


@pytest.mark.parametrize("text", ["ab", "a\U0001f44b"], ids=["plain", "emoji"])
async def test_a_merged_snapshot_is_reencoded_by_the_next_run(ctx, doc_log, text):
    """A snapshot stored merged (as every snapshot was before re-encoding; `compact` false) is
    re-encoded by the next run, in the projection worker -- unless it holds a character a Yjs
    client could split, which keeps it merged. The document is the same either way."""
    writer = await writer_for(ctx, doc_log)
    seqs = [await writer.type_text(text) for _ in range(30)]
    entries = await doc_log.read(writer.doc_id, 0)
    merged = pycrdt.merge_updates(*(e.update for e in entries[:20]))
    assert await doc_snapshots.save_snapshot(
        ctx.db,
        writer.doc_id,
        seq=seqs[19],
        state=merged,
        state_vector=pycrdt.get_state(merged),
        update_count=20,
        compact=False,
    )

    result = await snapshot_document(ctx, writer.doc_id)

    assert result.status == "snapshotted" and result.seq == seqs[-1]
    snapshot = await doc_snapshots.get_snapshot(ctx.db, writer.doc_id)
    assert snapshot.compact is (text == "ab")
    assert same_state(snapshot.state, writer.doc.get_update())
    await writer.type_text(text)  # the next run re-encodes onto it (or merges, as before)
    await snapshot_document(ctx, writer.doc_id)
    snapshot = await doc_snapshots.get_snapshot(ctx.db, writer.doc_id)
    assert snapshot.compact is (text == "ab")
    assert same_state(snapshot.state, writer.doc.get_update())
