"""R21: the document stream at its limits, on a separate nats-server with tiny limits (the shared
test stream cannot be shrunk under other tests). A publish past a limit fails loudly (discard-new),
nothing stored is deleted, the health check alerts before the limit, and the snapshot job frees
the subject again (tight purge) so editing resumes."""

from __future__ import annotations

import dataclasses
import tempfile
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace

import pytest
from pycrdt import Doc

import live.room
from bus.doc_log import DocLogRejected
from bus.doc_usage import assess, stream_usage, subject_counts
from bus.jetstream import doc_update_subject
from server.app import build_context
from server.embedded import EmbeddedNats
from services import snapshot_job
from services.doc_state import load_state
from tests.documents_support import Writer, make_doc_row, same_state
from tests.realtime_support import text_update

PER_SUBJECT = 5
FRAME_BYTES = 4096


@pytest.fixture
def small_nats() -> Iterator[EmbeddedNats]:
    with tempfile.TemporaryDirectory(prefix="collab-limits-") as tmp:
        server = EmbeddedNats(Path(tmp))
        server.start()
        try:
            yield server
        finally:
            server.stop()


@pytest.fixture
def limited(io_loop, settings, small_nats):  # type: ignore[no-untyped-def]
    """A node whose COLLAB_DOCS stream has MaxMsgsPerSubject=5 and 4 KiB messages."""
    tight = dataclasses.replace(
        settings,
        nats_url=small_nats.url,
        docs_stream_max_msgs_per_subject=PER_SUBJECT,
        docs_stream_max_bytes=1024 * 1024,
        max_frame_bytes=FRAME_BYTES,
        snapshot_min_updates=10**6,  # only pressure makes the job act
    )
    ctx = build_context(tight)
    io_loop.run_sync(ctx.start)
    yield ctx
    io_loop.run_sync(ctx.stop)


async def first_seq(ctx) -> int:
    return (await stream_usage(ctx.nats, with_subjects=False)).first_seq


async def test_full_subject_refuses_loudly_and_deletes_nothing(limited):
    ctx = limited
    doc_log = ctx.doc_log
    writer = Writer(doc_log, await make_doc_row(ctx))
    seqs = [await writer.type_text(str(i)) for i in range(PER_SUBJECT)]
    before = await first_seq(ctx)
    live_before = writer.doc.get_update()
    with pytest.raises(DocLogRejected) as refused:
        await writer.type_text("one too many")
    assert refused.value.status == 507 and refused.value.code == "document_log_full"
    assert "maximum messages per subject" in refused.value.message
    # Nothing was silently dropped to make room.
    assert await first_seq(ctx) == before
    entries = await doc_log.read(writer.doc_id, 0)
    assert [e.seq for e in entries] == seqs
    state = await load_state(ctx.db, doc_log, writer.doc_id)
    assert same_state(state.update, live_before)


async def test_a_room_publishing_by_echo_gets_the_refusal_too(limited, monkeypatch):
    """A room publishes without a PubAck (live/room.py): a refused update never comes back, and
    the PubAck request after the echo timeout reports the same final refusal."""
    monkeypatch.setattr(live.room, "ECHO_TIMEOUT_S", 0.3)
    ctx = limited
    writer = Writer(ctx.doc_log, await make_doc_row(ctx))
    for i in range(PER_SUBJECT):
        await writer.type_text(str(i))
    room = await ctx.rooms.acquire(writer.doc_id)
    before = writer.doc.get_update()
    update = text_update(Doc(), "refused")
    editor = SimpleNamespace(conn_id="test-conn", user_id="test")
    with pytest.raises(DocLogRejected) as refused:
        await room.publish(editor, update, "m-refused", confirm_by_echo=True)
    assert refused.value.code == "document_log_full"
    assert not room.follower._echoes
    assert same_state(room.full_state(), before)


async def test_oversized_update_is_refused(limited):
    ctx = limited
    writer = Writer(ctx.doc_log, await make_doc_row(ctx))
    with pytest.raises(DocLogRejected):
        await writer.publish(b"\x00" * (FRAME_BYTES + 1))
    assert await ctx.doc_log.last_seq(writer.doc_id) == 0


async def test_update_over_the_servers_max_payload_is_refused(limited):
    """Past NATS' max_payload the client refuses before sending: the same final 507, not a 500
    (a whole-state write of a large document: a duplicate, an import)."""
    ctx = limited
    writer = Writer(ctx.doc_log, await make_doc_row(ctx))
    with pytest.raises(DocLogRejected) as refused:
        await writer.publish(b"\x00" * (ctx.nats.nc.max_payload + 1))
    assert refused.value.status == 507 and "message size limit" in refused.value.message
    assert await ctx.doc_log.last_seq(writer.doc_id) == 0


async def test_health_alerts_before_the_limit(limited):
    ctx = limited
    writer = Writer(ctx.doc_log, await make_doc_row(ctx))
    levels = []
    for i in range(PER_SUBJECT):
        await writer.type_text(str(i))
        usage = await stream_usage(ctx.nats)
        per_subject = [f for f in assess(usage) if f.limit == "max_msgs_per_subject"]
        levels.append(per_subject[0].level)
    # 1/5, 2/5 ok; 3/5 = 60% warning; 4/5 = 80% and 5/5 critical: all before a refusal.
    assert levels == ["ok", "ok", "warning", "critical", "critical"]
    assert "max_msgs_per_subject:critical" in await snapshot_job.check_stream_health(ctx)


async def test_snapshot_job_frees_a_full_subject(limited):
    ctx = limited
    doc_log = ctx.doc_log
    writer = Writer(doc_log, await make_doc_row(ctx))
    for i in range(PER_SUBJECT):
        await writer.type_text(str(i))
    with pytest.raises(DocLogRejected):
        await writer.type_text("x")
    # The refused edit stays in the client (Yjs keeps unconfirmed state) and is resent below.
    docs, _orphans = await snapshot_job.scan(ctx)
    (mine,) = [d for d in docs if d.doc_id == writer.doc_id]
    assert mine.pressure
    report = await snapshot_job.snapshot_dirty(ctx)
    (result,) = [r for r in report.snapshots if r.doc_id == writer.doc_id]
    assert result.status == "snapshotted" and result.purged_through == result.seq
    assert doc_update_subject(writer.doc_id) not in await subject_counts(ctx.nats)
    await writer.publish(writer.doc.get_update())  # the client's resend is accepted now
    state = await load_state(ctx.db, doc_log, writer.doc_id)
    assert same_state(state.update, writer.doc.get_update())
