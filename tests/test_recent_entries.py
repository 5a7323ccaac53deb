"""A room's tail of its log (live/recent_entries.py) answers only with what the log itself would
return after a seq -- the same entries, headers and all, with no gap -- and otherwise says "read
the log": after a load, a snapshot catch-up, a skipped poison entry, or past its bounds."""

from __future__ import annotations

import dataclasses
from types import SimpleNamespace

import pycrdt
import pytest

from bus.doc_log import LogEntry
from bus.jetstream import doc_update_subject
from live.recent_entries import RecentEntries
from services.snapshots import snapshot_document
from tests.realtime_support import document_with, text_of, text_update


def entry(seq: int, size: int = 1) -> LogEntry:
    return LogEntry(seq=seq, update=b"u" * size, user=f"user-{seq}")


@pytest.fixture
def settings(settings):  # type: ignore[no-untyped-def]
    """Rooms keep a tail only where a refresher runs; this one never wakes during a test (it
    would take the entries these tests read)."""
    return dataclasses.replace(settings, projection_refresh_s=3600.0)


def held(tail: RecentEntries) -> RecentEntries:
    tail.hold(3600)  # as after this node stored an update of the document
    return tail


def test_only_a_gapless_tail_that_reaches_far_enough_answers() -> None:
    tail = held(RecentEntries())
    tail.restart(10)  # loaded from a snapshot at seq 10
    assert tail.take_after(10, 10) == []
    added = [entry(12), entry(15), entry(16)]  # other documents' messages lie between
    for item in added:
        tail.add(item)
    assert tail.take_after(9, 16) is None  # before the snapshot the room was loaded from
    assert tail.take_after(10, 17) is None  # the caller knows of a newer entry the room lacks yet
    assert tail.take_after(17, 17) is None  # past what the room applied
    assert tail.take_after(10, 16) == added
    assert tail.take_after(12, 14) == added[1:]  # the caller holds seq 12 now: entry 12 goes
    assert len(tail) == 2 and tail.take_after(10, 16) is None
    assert tail.take_after(16, 16) == [] and len(tail) == 0
    tail.add(entry(18))
    tail.restart(20)  # a snapshot catch-up (or a skipped poison entry) at 20
    assert tail.take_after(16, 20) is None
    assert tail.take_after(20, 20) == []


def test_bounds_drop_the_oldest_and_move_where_the_tail_starts() -> None:
    by_count = held(RecentEntries(max_entries=2, max_bytes=1000))
    for seq in (1, 2, 3):
        by_count.add(entry(seq))
    assert by_count.from_seq == 1 and len(by_count) == 2
    assert by_count.take_after(0, 3) is None
    assert [e.seq for e in by_count.take_after(1, 3) or []] == [2, 3]

    by_bytes = held(RecentEntries(max_entries=100, max_bytes=10))
    by_bytes.add(entry(1, size=4))
    by_bytes.add(entry(2, size=4))
    by_bytes.add(entry(3, size=11))  # bigger than the whole budget: nothing is held
    assert len(by_bytes) == 0 and by_bytes.from_seq == by_bytes.last_seq == 3
    assert by_bytes.take_after(2, 3) is None
    assert by_bytes.take_after(3, 3) == []


def test_entries_are_kept_only_while_held() -> None:
    tail = RecentEntries()  # never held: nobody here will read it (no update stored here)
    tail.add(entry(1))
    assert len(tail) == 0 and tail.take_after(0, 1) is None and tail.take_after(1, 1) == []
    tail.hold(3600)
    tail.add(entry(2))
    tail.hold(-1)  # the hold ran out: what is held stays readable, nothing more is kept
    assert [e.seq for e in tail.take_after(1, 2) or []] == [2]
    tail.add(entry(3))
    assert len(tail) == 0 and tail.take_after(2, 3) is None and tail.take_after(3, 3) == []


def peer(user_id: str) -> SimpleNamespace:
    return SimpleNamespace(conn_id="conn-1", user_id=user_id)


def as_read(entries: list[LogEntry] | None) -> list[tuple[object, ...]]:
    assert entries is not None
    return [(e.seq, e.update, e.msg_id, e.client, e.user, e.node) for e in entries]


async def test_a_rooms_tail_is_what_the_log_returns(ctx):
    setup = await document_with(ctx, "editor", "commenter")
    room = await ctx.rooms.acquire(setup.doc_id)
    start = room.last_applied_seq
    doc = pycrdt.Doc()
    for index, role in enumerate(["editor", "commenter", "editor"]):
        update = text_update(doc, f"part {index}\x00 é 中")
        await room.publish(
            peer(setup.users[role].id), update, f"tail-{setup.doc_id}-{index}", confirm_by_echo=True
        )
    last = await ctx.doc_log.last_seq(setup.doc_id)
    assert room.last_applied_seq == last
    from_log = await ctx.doc_log.read(setup.doc_id, start)
    assert len(from_log) == 3
    assert ctx.rooms.recent_entries(setup.doc_id, start, last + 1) is None  # not applied here
    assert as_read(ctx.rooms.recent_entries(setup.doc_id, start, last)) == as_read(from_log)
    middle = from_log[0].seq
    assert as_read(room.recent.take_after(middle, last)) == as_read(from_log[1:])
    assert ctx.rooms.recent_entries("00000000-0000-4000-8000-000000000000", 0, 0) is None


async def test_a_room_keeps_no_tail_of_edits_made_elsewhere(ctx):
    """Only the node that stored an update refreshes for it: a room whose edits all come from
    other nodes holds none of them."""
    setup = await document_with(ctx, "editor")
    room = await ctx.rooms.acquire(setup.doc_id)
    editor = setup.users["editor"].id
    doc = pycrdt.Doc()
    for index in range(3):
        elsewhere = await ctx.doc_log.publish(
            setup.doc_id,
            text_update(doc, f"{index}"),
            msg_id=f"far-{setup.doc_id}-{index}",
            client="another-node-conn",
            user=editor,
        )
    assert await room.wait_applied(elsewhere.seq, 5)
    assert len(room.recent) == 0
    assert ctx.rooms.recent_entries(setup.doc_id, 0, elsewhere.seq) is None
    here = await room.publish(peer(editor), text_update(doc, "x"), f"far-{setup.doc_id}-x")
    assert await room.wait_applied(here.seq, 5)
    assert as_read(ctx.rooms.recent_entries(setup.doc_id, elsewhere.seq, here.seq)) == as_read(
        await ctx.doc_log.read(setup.doc_id, elsewhere.seq)
    )


async def test_a_skipped_poison_entry_and_a_snapshot_catch_up_restart_the_tail(ctx):
    setup = await document_with(ctx, "editor")
    room = await ctx.rooms.acquire(setup.doc_id)
    editor = peer(setup.users["editor"].id)
    doc = pycrdt.Doc()
    first = await room.publish(
        editor, text_update(doc, "one"), f"poison-{setup.doc_id}-1", confirm_by_echo=True
    )
    # A message no node validated, straight onto the subject (S3): the room skips it.
    poison = await ctx.nats.jetstream.publish(
        doc_update_subject(setup.doc_id), b"\xff\xff\xff\x7f not an update"
    )
    after = await room.publish(
        editor, text_update(doc, "two"), f"poison-{setup.doc_id}-2", confirm_by_echo=True
    )
    assert room.last_applied_seq == after.seq
    assert room.recent.take_after(first.seq, after.seq) is None  # the gap: read the log instead
    assert as_read(room.recent.take_after(poison.seq, after.seq)) == as_read(
        await ctx.doc_log.read(setup.doc_id, poison.seq)
    )

    # The room falls behind (its subscription gone), another writer goes on and a snapshot is
    # taken: when the room resubscribes it catches up from the snapshot, not entry by entry.
    await room.follower._sub.stop()
    elsewhere = await ctx.doc_log.publish(
        setup.doc_id,
        text_update(doc, "three"),
        msg_id=f"poison-{setup.doc_id}-3",
        client="c-2",
        user=editor.user_id,
    )
    assert (await snapshot_document(ctx, setup.doc_id)).seq == elsewhere.seq
    await room.resubscribe("stalled")
    assert room.last_applied_seq == elsewhere.seq
    assert room.recent.take_after(after.seq, elsewhere.seq) is None
    assert room.recent.take_after(elsewhere.seq, elsewhere.seq) == []
    assert text_of(room.full_state()) == "onetwothree"
