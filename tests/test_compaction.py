"""Re-encoding a document's updates (core/compaction.py) and the room's document holding it
(live/merged_doc.py): smaller, the same document in real Yjs, and refused whenever a `Doc` could
lose or corrupt anything -- split surrogate pairs, pending structs, pending deletions."""

from __future__ import annotations

import pycrdt
import pytest

import core.compaction
import live.merged_doc
from core.compaction import Coverage, reencode, reencode_off_loop, worth_reencoding
from core.yjs import EMPTY_UPDATE
from live.merged_doc import POISON_UPDATES, MergedDoc
from tests.test_doc_content import run_yjs

#: A stock Yjs client (yjs 13, clientID 1) typing "hello 😀 world…", deleting the first half of the
#: emoji (Yjs then holds U+FFFD) and inserting "ABC": made with bench/node_modules' Yjs.
SPLIT_SURROGATE_UPDATES = [
    bytes.fromhex(
        "01010100040104746578742368656c6c6f20f09f988020776f726c6420616e64206d6f72652074657874"
        "206865726500"
    ),
    bytes.fromhex("000101010701"),
    bytes.fromhex("01010121c4010201030341424300"),
]


def edits(count: int, *, stride: int = 7919) -> list[bytes]:
    """`count` separate updates of one client: scattered inserts, some deletions, map and array
    writes and a formatted XML element (what editors store), one transaction each."""
    doc: pycrdt.Doc = pycrdt.Doc()
    text = doc.get("text", type=pycrdt.Text)
    fields = doc.get("map", type=pycrdt.Map)
    items = doc.get("array", type=pycrdt.Array)
    fragment = doc.get("prosemirror", type=pycrdt.XmlFragment)
    updates: list[bytes] = []
    paragraph = fragment.children.append(pycrdt.XmlElement("paragraph", {"textAlignment": "left"}))
    body = paragraph.children.append(pycrdt.XmlText())
    updates.append(doc.get_update())
    for i in range(count):
        before = doc.get_state()
        if i % 7 == 6 and len(text) > 4:
            del text[(i * 13) % (len(text) - 2) : (i * 13) % (len(text) - 2) + 2]
        else:
            text.insert((i * stride) % (len(text) + 1), "xyz"[i % 3])
        if i % 10 == 0:
            fields[f"k{i % 4}"] = {"n": i, "s": "v"}
            items.append(i)
        if i % 25 == 0:
            body.insert(len(body), "word ", {"bold": True} if i % 50 == 0 else None)
        updates.append(doc.get_update(before))
    return updates


def yjs_view(updates: list[bytes]) -> dict:
    seen = run_yjs(updates, ["prosemirror"])
    assert not seen["pending"]
    return {key: seen[key] for key in ("text", "map", "array", "xml")}


def test_reencoding_is_the_same_document_in_yjs() -> None:
    updates = edits(600)
    encoded = reencode(EMPTY_UPDATE, updates)
    assert encoded is not None
    assert yjs_view([encoded]) == yjs_view(updates)
    coverage = Coverage(encoded)
    assert coverage.complete and all(coverage.contains(u) for u in updates)


def test_a_long_edited_text_is_much_smaller_reencoded() -> None:
    """The late-joiner bench's fill: one-character inserts at scattered places, arriving as runs
    (a socket's batch is one log entry). Past a few thousand characters the merged form keeps
    items apart that a `Doc` holds as one (at 100k inserts: 2.29 MB merged, 0.27 MB re-encoded)."""
    doc: pycrdt.Doc = pycrdt.Doc()
    text = doc.get("text", type=pycrdt.Text)
    inserts = []
    for i in range(20_000):
        before = doc.get_state()
        text.insert((i * 7919) % (len(text) + 1), "x")
        inserts.append(doc.get_update(before))
    runs = [pycrdt.merge_updates(*inserts[i : i + 21]) for i in range(0, len(inserts), 21)]
    encoded = reencode(EMPTY_UPDATE, runs)
    assert encoded is not None
    assert len(encoded) * 2 < len(pycrdt.merge_updates(*runs))
    assert run_yjs([encoded])["text"] == str(text)


def test_reencoding_onto_a_reencoded_base_gives_the_same_document() -> None:
    updates = edits(400)
    base = reencode(EMPTY_UPDATE, updates[:250])
    assert base is not None
    assert yjs_view([reencode(base, updates[250:]) or b""]) == yjs_view(updates)


def test_a_split_surrogate_pair_is_not_reencoded() -> None:
    """pycrdt's `Doc` encodes this text shifted by one UTF-16 unit (the state Yjs refuses), so any
    input carrying a character outside the BMP keeps the merged form."""
    assert reencode(EMPTY_UPDATE, SPLIT_SURROGATE_UPDATES) is None
    assert run_yjs([pycrdt.merge_updates(*SPLIT_SURROGATE_UPDATES)])["text"] == (
        "helABClo \ufffd world and more text here"
    )


def test_a_client_id_that_looks_like_an_emoji_does_not_stop_reencoding() -> None:
    client_id = pycrdt.Decoder(bytes.fromhex("ecde83f0b89fb70e")).read_var_uint()  # f0 b8 9f b7
    doc: pycrdt.Doc = pycrdt.Doc(client_id=client_id)
    text = doc.get("text", type=pycrdt.Text)
    text += "plain text"
    plain = doc.get_update()
    assert reencode(plain, []) is not None
    before = doc.get_state()
    text += " \U0001f44b"
    assert reencode(plain, [doc.get_update(before)]) is None


def test_pending_structs_are_not_reencoded() -> None:
    updates = edits(30)
    assert reencode(updates[0], updates[2:]) is None  # the 2nd is missing: the rest waits


def test_a_pending_deletion_is_not_reencoded() -> None:
    first, second = edits(1)
    writer: pycrdt.Doc = pycrdt.Doc()
    writer.apply_update(first)
    writer.apply_update(second)
    before = writer.get_state()
    del writer.get("text", type=pycrdt.Text)[0:1]
    deletion = writer.get_update(before)  # deletes an item that `second` made
    assert reencode(first, [deletion]) is None
    assert reencode(first, [second, deletion]) is not None


def test_entries_too_large_to_apply_on_the_loop_are_left_to_the_worker(monkeypatch) -> None:
    updates = edits(60)
    biggest = max(map(len, updates[1:]))
    limits = core.compaction.Limits(entry_bytes=biggest - 1, total_bytes=10**9)
    monkeypatch.setattr(core.compaction, "ON_LOOP_LIMITS", limits)
    assert reencode(updates[0], updates[1:]) is None
    total = sum(map(len, updates[1:]))
    limits = core.compaction.Limits(entry_bytes=biggest, total_bytes=total - 1)
    monkeypatch.setattr(core.compaction, "ON_LOOP_LIMITS", limits)
    assert reencode(updates[0], updates[1:]) is None
    merged = pycrdt.merge_updates(*updates)
    assert reencode(merged, []) is not None  # the base may be any size
    assert yjs_view([reencode_off_loop(updates[0], updates[1:]) or b""]) == yjs_view(updates)


def test_runs_are_bounded_in_entries_and_bytes(monkeypatch) -> None:
    monkeypatch.setattr(core.compaction, "RUN_BYTES", 300)
    entries = [b"\x00\x00", b"a" * 200, b"b" * 200, b"c" * 500, *[b"\x00\x00"] * 40]
    monkeypatch.setattr(core.compaction, "merge", lambda run: b"+".join(run))
    runs = core.compaction._runs(entries)
    assert runs[:3] == [b"\x00\x00+" + b"a" * 200, b"b" * 200, b"c" * 500]
    assert [len(r.split(b"+")) for r in runs[3:]] == [32, 8]


def test_unreadable_input_is_not_reencoded() -> None:
    assert reencode(edits(1)[0], [b"\x01\x02garbage"]) is None


def test_coverage_tells_new_structs_and_deletions_from_known_ones() -> None:
    updates = edits(40)
    state = pycrdt.merge_updates(*updates)
    coverage = Coverage(state)
    assert all(coverage.contains(u) for u in updates)
    doc: pycrdt.Doc = pycrdt.Doc()
    doc.apply_update(state)
    text = doc.get("text", type=pycrdt.Text)
    before = doc.get_state()
    text.insert(0, "new")
    assert not coverage.contains(doc.get_update(before))
    before = doc.get_state()
    del text[5:7]
    deletion = doc.get_update(before)
    assert not coverage.contains(deletion)
    assert Coverage(pycrdt.merge_updates(state, deletion)).contains(deletion)


@pytest.fixture
def compact_often(monkeypatch):  # type: ignore[no-untyped-def]
    monkeypatch.setattr(live.merged_doc, "COMPACT_AFTER_ENTRIES", 16)


def test_a_room_document_is_reencoded_as_entries_arrive(compact_often) -> None:
    updates = edits(200)
    room = MergedDoc("doc")
    for update in updates:
        room.append(update)
    state = room.full_state()
    assert room.is_reencoded
    assert yjs_view([room.diff(b"\x00")]) == yjs_view(updates)
    # A reconnecting client's SyncStep2 (its whole delete set, nothing new) is not an edit.
    assert not room.would_change(pycrdt.get_update(state, pycrdt.get_state(state)))
    assert not any(room.would_change(u) for u in updates)
    assert room.would_change(edits(201)[200])


def test_a_room_document_with_emoji_stays_merged_and_whole(compact_often) -> None:
    room = MergedDoc("doc")
    room.reset(EMPTY_UPDATE, compact=True)
    for update in [*edits(40), *SPLIT_SURROGATE_UPDATES]:
        room.append(update)
    state = room.full_state()
    assert not room.is_reencoded
    assert "helABClo \ufffd world and more text here" in run_yjs([state])["text"]


def test_poison_in_the_tail_is_skipped_and_the_rest_kept(compact_often) -> None:
    updates = edits(40)
    room = MergedDoc("doc")
    before = POISON_UPDATES.labels("merge")._value.get()
    for update in [*updates[:20], b"\x01\x02garbage", *updates[20:]]:
        room.append(update)
    assert yjs_view([room.full_state()]) == yjs_view(updates)
    assert POISON_UPDATES.labels("merge")._value.get() == before + 1


def test_a_snapshot_not_known_to_be_reencoded_is_never_loaded_into_a_doc(compact_often) -> None:
    updates = edits(100)
    room = MergedDoc("doc")
    room.reset(pycrdt.merge_updates(*updates[:50]))  # a merged snapshot (the row's compact false)
    for update in updates[50:]:
        room.append(update)
    assert not room.is_reencoded
    assert yjs_view([room.full_state()]) == yjs_view(updates)
    room.reset(reencode(EMPTY_UPDATE, updates[:50]) or b"", compact=True)
    for update in updates[50:]:
        room.append(update)
    room.absorb(pycrdt.merge_updates(*updates))  # a newer snapshot catching up a gap
    assert not room.is_reencoded
    assert yjs_view([room.full_state()]) == yjs_view(updates)


def test_worth_reencoding_tells_the_states_that_could_pass() -> None:
    updates = edits(40)
    assert worth_reencoding(pycrdt.merge_updates(*updates))
    assert not worth_reencoding(pycrdt.merge_updates(updates[0], *updates[2:]))  # pending
    assert not worth_reencoding(pycrdt.merge_updates(*updates, *SPLIT_SURROGATE_UPDATES))
    assert not worth_reencoding(b"\x01\x02garbage")


def test_a_room_entry_too_large_for_the_loop_leaves_the_document_merged(
    compact_often, monkeypatch
) -> None:
    updates = edits(100)
    big = pycrdt.merge_updates(*updates[:60])  # a merged state published as one update
    monkeypatch.setattr(
        core.compaction, "ON_LOOP_LIMITS", core.compaction.Limits(len(big) - 1, 10**9)
    )
    room = MergedDoc("doc")
    for update in [big, *updates[60:]]:
        room.append(update)
    state = room.full_state()
    assert not room.is_reencoded
    assert yjs_view([state]) == yjs_view(updates)
