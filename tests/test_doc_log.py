"""The document log on real JetStream: publish/dedupe, ordered read, purge edges (R13, R16, R22)."""

from __future__ import annotations

import asyncio
import dataclasses
import uuid

import pycrdt
import pytest

from bus.connection import NatsConnection
from bus.doc_log import DocLog, signing_key
from bus.jetstream import DOCS_STREAM, ensure_streams
from core.yjs import merge
from models.repo import doc_snapshots
from server.embedded import EmbeddedNats
from services.doc_state import advance_state, load_state


def text_update(doc: pycrdt.Doc, text: str) -> bytes:
    before = doc.get_state()
    doc.get("t", type=pycrdt.Text).insert(len(str(doc.get("t", type=pycrdt.Text))), text)
    return doc.get_update(before)


def text_of(update: bytes) -> str:
    doc = pycrdt.Doc()
    doc.apply_update(update)
    return str(doc.get("t", type=pycrdt.Text))


async def make_document(ctx) -> str:
    user = await ctx.db.fetchval(
        "INSERT INTO users (email, password_hash, display_name) VALUES ($1, 'x', 'D') RETURNING id",
        f"doclog-{uuid.uuid4().hex}@example.com",
    )
    ws = await ctx.db.fetchval(
        "INSERT INTO workspaces (name, slug, created_by) VALUES ('W', $1, $2) RETURNING id",
        f"ws-{uuid.uuid4().hex}",
        user,
    )
    doc = await ctx.db.fetchval(
        "INSERT INTO documents (workspace_id, title, created_by) VALUES ($1, 'D', $2) RETURNING id",
        ws,
        user,
    )
    return str(doc)


@pytest.fixture
def doc_log(ctx) -> DocLog:
    return DocLog(ctx.nats, ctx.node_id)


async def test_publish_dedupes_by_msg_id_and_reads_in_order(ctx, doc_log):
    doc_id = str(uuid.uuid4())
    source = pycrdt.Doc()
    first = await doc_log.publish(
        doc_id, text_update(source, "a"), msg_id="m1", client="c", user="u"
    )
    again = await doc_log.publish(doc_id, b"ignored", msg_id="m1", client="c", user="u")
    assert again.duplicate and again.seq == first.seq
    second = await doc_log.publish(
        doc_id, text_update(source, "b"), msg_id="m2", client="c", user="u"
    )
    entries = await doc_log.read(doc_id, 0)
    assert [e.seq for e in entries] == [first.seq, second.seq]
    assert entries[0].msg_id == "m1" and entries[0].node == ctx.node_id
    assert text_of(merge([e.update for e in entries])) == "ab"
    assert await doc_log.read(doc_id, second.seq) == []
    assert await doc_log.last_seq(doc_id) == second.seq


async def test_validated_publishes_are_signed_for_their_document(ctx):
    """The node's own log (keyed from its JWT secret) signs what a caller validated, and a reader
    with the same key vouches for it -- for that document only; unvalidated writes go unsigned."""
    doc_log = ctx.doc_log
    doc_id, other = str(uuid.uuid4()), str(uuid.uuid4())
    source = pycrdt.Doc()
    await doc_log.publish(
        doc_id, text_update(source, "a"), msg_id="s1", client="c", user="u", validated=True
    )
    await doc_log.publish(doc_id, text_update(source, "b"), msg_id="s2", client="c", user="u")
    signed, unsigned = await doc_log.read(doc_id, 0)
    assert signed.signature is not None and doc_log.vouched(doc_id, signed)
    assert not doc_log.vouched(other, signed)
    assert unsigned.signature is None and not doc_log.vouched(doc_id, unsigned)
    # Another node of the deployment (same secret) vouches too; one without a key does not.
    assert DocLog(ctx.nats, "node-b", signing_key(ctx.settings.jwt_secret)).vouched(doc_id, signed)
    assert not DocLog(ctx.nats, "node-c").vouched(doc_id, signed)


async def test_purge_only_touches_one_document_and_never_below_two(ctx, doc_log):
    a, b = str(uuid.uuid4()), str(uuid.uuid4())
    src_a, src_b = pycrdt.Doc(), pycrdt.Doc()
    seqs_a = []
    for i in range(3):
        seqs_a.append(
            (
                await doc_log.publish(
                    a, text_update(src_a, str(i)), msg_id=f"a{i}", client="c", user="u"
                )
            ).seq
        )
        await doc_log.publish(b, text_update(src_b, str(i)), msg_id=f"b{i}", client="c", user="u")
    await doc_log.purge_through(a, 0)  # no-op, never a whole-subject purge
    assert len(await doc_log.read(a, 0)) == 3
    await doc_log.purge_through(a, seqs_a[1])
    assert [e.seq for e in await doc_log.read(a, 0)] == [seqs_a[2]]
    assert len(await doc_log.read(b, 0)) == 3


async def test_load_state_combines_snapshot_and_log(ctx, doc_log):
    doc_id = await make_document(ctx)
    source = pycrdt.Doc()
    updates, last = [], 0
    for i in range(5):
        update = text_update(source, str(i))
        updates.append(update)
        last = (await doc_log.publish(doc_id, update, msg_id=f"x{i}", client="c", user="u")).seq
        if i == 2:
            snap_seq = last
    state = await load_state(ctx.db, doc_log, doc_id)
    assert text_of(state.update) == "01234" and state.seq == last
    snapshot = merge(updates[:3])
    assert await doc_snapshots.save_snapshot(
        ctx.db, doc_id, seq=snap_seq, state=snapshot, state_vector=b"", update_count=3
    )
    assert not await doc_snapshots.save_snapshot(
        ctx.db, doc_id, seq=snap_seq - 1, state=b"", state_vector=b"", update_count=0
    )
    await doc_log.purge_through(doc_id, snap_seq)
    state = await load_state(ctx.db, doc_log, doc_id)
    assert text_of(state.update) == "01234"
    assert state.snapshot_seq == snap_seq and len(state.entries) == 2


async def test_advance_state_reads_only_what_is_new(ctx, doc_log):
    doc_id = await make_document(ctx)
    source = pycrdt.Doc()
    for i in range(3):
        await doc_log.publish(
            doc_id, text_update(source, str(i)), msg_id=f"adv{i}", client="c", user="u"
        )
    base = await load_state(ctx.db, doc_log, doc_id)
    same = await advance_state(ctx.db, doc_log, doc_id, base)
    assert same.seq == base.seq and same.entries == [] and text_of(same.update) == "012"
    for i in range(3, 5):
        await doc_log.publish(
            doc_id, text_update(source, str(i)), msg_id=f"more{i}", client="c", user="u"
        )
    now = await advance_state(ctx.db, doc_log, doc_id, base)
    assert text_of(now.update) == "01234"
    assert [e.update for e in now.entries] == [
        e.update for e in (await load_state(ctx.db, doc_log, doc_id)).entries[3:]
    ]
    assert now.snapshot_seq == base.seq and now.snapshot_update == base.update
    assert now.seq == (await load_state(ctx.db, doc_log, doc_id)).seq


async def test_advance_state_after_a_snapshot_and_purge_past_its_base_loads_in_full(ctx, doc_log):
    """A base older than a snapshot whose purge removed entries after it: reading the log from
    the base would silently start after the hole; the whole state is loaded instead."""
    doc_id = await make_document(ctx)
    source = pycrdt.Doc()
    await doc_log.publish(doc_id, text_update(source, "a"), msg_id="full0", client="c", user="u")
    base = await load_state(ctx.db, doc_log, doc_id)
    await doc_log.publish(doc_id, text_update(source, "b"), msg_id="full1", client="c", user="u")
    full = await load_state(ctx.db, doc_log, doc_id)
    assert await doc_snapshots.save_snapshot(
        ctx.db, doc_id, seq=full.seq, state=full.update, state_vector=b"", update_count=2
    )
    await doc_log.purge_through(doc_id, full.seq)  # "b" is now only in the snapshot
    await doc_log.publish(doc_id, text_update(source, "c"), msg_id="full2", client="c", user="u")
    now = await advance_state(ctx.db, doc_log, doc_id, base)
    assert text_of(now.update) == "abc"
    assert now.snapshot_seq == full.seq and len(now.entries) == 1


async def test_pending_update_survives_snapshot_and_purge(ctx, doc_log):
    """R16: U2 depends on U1; publish U2, snapshot + purge, then U1: a fresh load has both."""
    doc_id = await make_document(ctx)
    source = pycrdt.Doc()
    u1 = text_update(source, "first ")
    u2 = text_update(source, "second")
    s2 = (await doc_log.publish(doc_id, u2, msg_id="u2", client="c", user="u")).seq
    state = await load_state(ctx.db, doc_log, doc_id)
    await doc_snapshots.save_snapshot(
        ctx.db, doc_id, seq=state.seq, state=state.update, state_vector=b"", update_count=1
    )
    await doc_log.purge_through(doc_id, s2)
    await doc_log.publish(doc_id, u1, msg_id="u1", client="c", user="u")
    assert text_of((await load_state(ctx.db, doc_log, doc_id)).update) == "first second"


async def test_publish_rides_out_a_stream_without_a_leader(settings, tmp_path):
    """R4: while a stream has no leader (an R3 leader was just SIGKILLed, or the stream is being
    recreated) nats-py raises NoStreamResponseError; the publish retries it within its deadline
    instead of failing the sender at once (found by tests/test_fault_nats_cluster.py)."""
    server = EmbeddedNats(tmp_path / "nats")
    server.start()
    conn = NatsConnection(dataclasses.replace(settings, nats_url=server.url))
    try:
        await conn.start()
        await conn.jetstream.delete_stream(DOCS_STREAM)
        update = text_update(pycrdt.Doc(), "x")
        publishing = asyncio.ensure_future(
            DocLog(conn, "n").publish("leaderless", update, msg_id="m", client="c", user="u")
        )
        await asyncio.sleep(1.0)  # the outage: a second without any stream to answer
        assert not publishing.done()
        await ensure_streams(conn.jetstream, conn.settings)
        ack = await asyncio.wait_for(publishing, 10)
        assert ack.seq == 1 and not ack.duplicate
    finally:
        await conn.stop()
        server.stop()


async def test_a_long_log_is_read_whole_and_in_order_through_flow_control(ctx, doc_log):
    """Entries are handed over as nats-py parses them (bus/nats_client.deliver_directly): a read
    of thousands of entries, far past the ordered consumer's flow-control window, still gets
    every one in stream order (nats-py must answer the flow-control requests for it)."""
    doc_id = str(uuid.uuid4())
    source = pycrdt.Doc()
    text = source.get("t", type=pycrdt.Text)
    updates: list[bytes] = []
    source.observe(lambda event: updates.append(event.update))
    for i in range(3000):
        # Each insert goes in front: appending would let Yjs squash them into one growing item,
        # which makes pycrdt copy the whole text per insert (tens of seconds for 3 MB).
        text.insert(0, f"{i:05d}" + "x" * 1000)
    seqs: list[int] = []
    for start in range(0, len(updates), 100):
        acks = await asyncio.gather(
            *(
                doc_log.publish(
                    doc_id, u, msg_id=f"long-{doc_id}-{start + i}", client="c", user="u"
                )
                for i, u in enumerate(updates[start : start + 100])
            )
        )
        seqs.extend(a.seq for a in acks)
    entries = await doc_log.read(doc_id, 0)
    assert [e.seq for e in entries] == sorted(seqs)
    read_text = text_of(merge([e.update for e in entries]))
    assert read_text.startswith("02999x") and read_text.endswith("00000" + "x" * 1000)
    assert len(read_text) == 3000 * 1005
