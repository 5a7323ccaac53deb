"""Example-based tests of the y-websocket codec in ``live/protocol.py``.

The codec is pure, so these are plain synchronous tests. Payloads come from real pycrdt documents
and, in ``tests/js/fixtures/protocol_frames.json``, from the real JS encoders (yjs, y-protocols,
lib0) via ``tests/js/make_protocol_fixtures.mjs``; ``tests/test_yjs_harness.py`` checks that the
checked-in fixture file is still what Node produces.
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import pycrdt
import pytest
from pycrdt import Array, Doc, Map, Text, XmlFragment, write_var_uint

from live.protocol import (
    EMPTY_UPDATE,
    MAX_AWARENESS_STATE_BYTES,
    MAX_NESTING_DEPTH,
    MAX_SAFE_INTEGER,
    MAX_YJS_CLOCK,
    AuthMessage,
    AwarenessEntry,
    AwarenessMessage,
    ProtocolError,
    QueryAwareness,
    SyncStep1,
    SyncStep2,
    SyncUpdate,
    call_pycrdt,
    decode_awareness,
    decode_message,
    encode_awareness,
    encode_awareness_entries,
    encode_message,
    encode_permission_denied,
    encode_query_awareness,
    encode_sync_step1,
    encode_sync_step2,
    encode_update,
    validate_state_vector,
    validate_update,
    validate_update_structure,
)

FIXTURE_FILE = Path(__file__).parent / "js" / "fixtures" / "protocol_frames.json"


# --------------------------------------------------------------------------------------------------
# Helpers building real payloads
# --------------------------------------------------------------------------------------------------


def var_bytes(data: bytes) -> bytes:
    return write_var_uint(len(data)) + data


def rich_doc() -> Doc:
    """A pycrdt doc with text, map (nested values, bytes), array and XML content."""
    doc = Doc()
    text = doc.get("text", type=Text)
    text += "hello wörld 👋"
    text.format(0, 5, {"bold": True})
    doc.get("map", type=Map).update({"n": 1, "nested": {"a": [1, None, True]}, "b": b"\x00\xff"})
    array = doc.get("array", type=Array)
    array.extend([1, "two", Map({"three": 3})])
    del array[0]
    doc.get("xml", type=XmlFragment).children.append(pycrdt.XmlElement("p", {"align": "left"}))
    return doc


def keystroke_update() -> bytes:
    """The incremental update one keystroke produces after some existing content."""
    doc = rich_doc()
    updates: list[bytes] = []
    doc.observe(lambda event: updates.append(event.update))
    doc.get("text", type=Text).insert(3, "X")
    assert len(updates) == 1
    return updates[0]


def single_item_update(info: int, body: bytes, *, client: int = 77, clock: int = 0) -> bytes:
    """A hand-built v1 update with one struct (``info`` byte + ``body``) and an empty delete set."""
    return (
        b"\x01\x01"
        + write_var_uint(client)
        + write_var_uint(clock)
        + bytes([info])
        + body
        + b"\x00"
    )


ROOT_PARENT = b"\x01" + var_bytes(b"root")  # parent info 1 = a root type named by a string
STRING_REF, ANY_REF, EMBED_REF, FORMAT_REF, TYPE_REF, JSON_REF = 4, 8, 5, 6, 7, 2


# --------------------------------------------------------------------------------------------------
# Round trips
# --------------------------------------------------------------------------------------------------


def round_trip(message: Any) -> None:
    frame = encode_message(message)
    assert decode_message(frame) == message
    assert encode_message(decode_message(frame)) == frame


def test_sync_step1_round_trips_a_real_state_vector() -> None:
    round_trip(SyncStep1(state_vector=rich_doc().get_state()))


def test_sync_step1_round_trips_an_empty_state_vector() -> None:
    round_trip(SyncStep1(state_vector=Doc().get_state()))


def test_sync_step2_round_trips_a_full_document_update() -> None:
    round_trip(SyncStep2(update=rich_doc().get_update()))


def test_sync_step2_round_trips_the_empty_update_clients_send_on_connect() -> None:
    round_trip(SyncStep2(update=EMPTY_UPDATE))


def test_sync_update_round_trips_an_incremental_update() -> None:
    round_trip(SyncUpdate(update=keystroke_update()))


def test_awareness_round_trips_present_and_removed_clients() -> None:
    message = AwarenessMessage.from_entries(
        [
            AwarenessEntry(client_id=1, clock=3, state={"user": {"name": "Zoë"}, "cursor": None}),
            AwarenessEntry(client_id=2**32 + 5, clock=0, state={}),
            AwarenessEntry(client_id=7, clock=9, state=None),
        ]
    )
    round_trip(message)


def test_query_awareness_round_trips() -> None:
    round_trip(QueryAwareness())
    assert encode_query_awareness() == b"\x03"


def test_permission_denied_round_trips_a_non_ascii_reason() -> None:
    round_trip(AuthMessage(reason="read-only ✋ — viewers cannot edit"))


def test_encoders_frame_payloads_as_y_protocols_does() -> None:
    """Layout check against the protocol description: type, subtype, varuint length, payload."""
    payload = bytes(range(200))  # long enough to need a two-byte length prefix
    assert encode_sync_step1(payload) == b"\x00\x00\xc8\x01" + payload
    assert encode_sync_step2(payload) == b"\x00\x01\xc8\x01" + payload
    assert encode_update(payload) == b"\x00\x02\xc8\x01" + payload
    assert encode_awareness(payload) == b"\x01\xc8\x01" + payload
    assert encode_permission_denied("é") == b"\x02\x00\x02\xc3\xa9"  # UTF-8 bytes, not characters


def test_decoded_update_applies_to_pycrdt_and_converges() -> None:
    source = rich_doc()
    message = decode_message(encode_sync_step2(source.get_update()))
    assert isinstance(message, SyncStep2)
    target = Doc()
    target.apply_update(message.update)
    assert target.get_state() == source.get_state()
    assert str(target.get("text", type=Text)) == str(source.get("text", type=Text))


# --------------------------------------------------------------------------------------------------
# Frames produced by the real JS library
# --------------------------------------------------------------------------------------------------


def js_fixture_frames() -> list[dict[str, Any]]:
    return json.loads(FIXTURE_FILE.read_text())["frames"]


@pytest.mark.parametrize(
    "fixture",
    [frame for frame in js_fixture_frames() if not frame.get("pycrdt_rejects")],
    ids=lambda fixture: fixture["name"],
)
def test_frames_written_by_yjs_decode_and_re_encode_byte_for_byte(fixture: dict[str, Any]) -> None:
    frame = bytes.fromhex(fixture["hex"])
    message = decode_message(frame)
    assert type(message).__name__ == fixture["kind"]
    assert encode_message(message) == frame


def fixture_by_name(name: str) -> dict[str, Any]:
    return next(frame for frame in js_fixture_frames() if frame["name"] == name)


def test_full_state_written_by_yjs_gives_the_same_content_in_pycrdt() -> None:
    fixture = fixture_by_name("sync_step2_rich")
    message = decode_message(bytes.fromhex(fixture["hex"]))
    assert isinstance(message, SyncStep2)
    doc = Doc()
    doc.apply_update(message.update)
    expected = fixture["json"]
    assert str(doc.get("text", type=Text)) == expected["text"]
    assert str(doc.get("xml", type=XmlFragment)) == expected["xml"]
    assert doc.get("array", type=Array).to_py() == expected["array"]
    content = doc.get("map", type=Map).to_py()
    assert content.pop("bytes") == bytes([0, 1, 254, 255])  # JS toJSON spells Uint8Array as a dict
    del expected["map"]["bytes"]
    assert content == expected["map"]


def test_state_vector_written_by_yjs_matches_pycrdt_after_applying_the_state() -> None:
    step1 = decode_message(bytes.fromhex(fixture_by_name("sync_step1_rich")["hex"]))
    step2 = decode_message(bytes.fromhex(fixture_by_name("sync_step2_rich")["hex"]))
    assert isinstance(step1, SyncStep1)
    assert isinstance(step2, SyncStep2)
    (client, clock), *_ = fixture_by_name("sync_step1_rich")["state_vector"].items()
    assert step1.state_vector == b"\x01" + write_var_uint(int(client)) + write_var_uint(clock)
    doc = Doc()
    doc.apply_update(step2.update)
    assert doc.get_state() == step1.state_vector


@pytest.mark.parametrize("name", ["awareness_present", "awareness_removed"])
def test_awareness_written_by_y_protocols_is_decoded(name: str) -> None:
    fixture = fixture_by_name(name)
    message = decode_message(bytes.fromhex(fixture["hex"]))
    assert isinstance(message, AwarenessMessage)
    assert [
        {"client_id": entry.client_id, "clock": entry.clock, "state": entry.state}
        for entry in message.entries
    ] == fixture["entries"]


def test_permission_denied_written_by_y_protocols_is_decoded() -> None:
    fixture = fixture_by_name("permission_denied")
    assert decode_message(bytes.fromhex(fixture["hex"])) == AuthMessage(reason=fixture["reason"])


def test_update_yjs_can_write_but_pycrdt_cannot_decode_is_rejected() -> None:
    """An XmlHook is valid Yjs but yrs cannot read it: publishing it would poison the stream."""
    frame = bytes.fromhex(fixture_by_name("update_xml_hook_unsupported_by_pycrdt")["hex"])
    update = frame[3:]  # type, subtype, one-byte length
    validate_update_structure(update)  # well-formed for Yjs ...
    with pytest.raises(ProtocolError, match="pycrdt"):
        decode_message(frame)  # ... but no room could apply it


# --------------------------------------------------------------------------------------------------
# Frame-level rejections
# --------------------------------------------------------------------------------------------------

REJECTED_FRAMES = {
    "empty frame": (b"", "empty"),
    "truncated outer varint": (b"\x80", "truncated"),
    "outer varint above 2**53": (b"\xff" * 7 + b"\x7f", "2\\*\\*53"),
    "overlong outer varint": (b"\x80" * 9 + b"\x00", "longer than"),
    "non-canonical outer varint": (b"\x81\x00\x01\x00", "redundant trailing zero"),
    "unknown outer type": (b"\x04", "unknown message type 4"),
    "unknown outer type 127": (b"\x7f\x00", "unknown message type 127"),
    "sync without subtype": (b"\x00", "truncated"),
    "unknown sync type": (b"\x00\x03\x00", "unknown sync message type 3"),
    "sync without payload length": (b"\x00\x02", "truncated"),
    "length prefix beyond the frame": (b"\x00\x02\x05\x00\x00", "declares 5 bytes"),
    "huge length prefix": (b"\x00\x01" + write_var_uint(2**50) + b"\x00\x00", "declares"),
    "trailing bytes after an update": (encode_update(EMPTY_UPDATE) + b"\x00", "trailing"),
    "trailing bytes after step 1": (encode_sync_step1(b"\x00") + b"zz", "trailing"),
    "trailing bytes after query awareness": (b"\x03\x00", "trailing"),
    "trailing bytes after awareness": (encode_awareness(b"\x00") + b"\x01", "trailing"),
    "trailing bytes after permission denied": (encode_permission_denied("x") + b"!", "trailing"),
    "unknown auth subtype": (b"\x02\x01\x00", "unknown auth"),
    "permission denied reason not UTF-8": (b"\x02\x00\x02\xc3\x28", "UTF-8"),
    "garbage update in a sync update": (encode_update(b"\xde\xad\xbe\xef"), None),
    "garbage state vector in step 1": (encode_sync_step1(b"\x05\x01"), None),
    "garbage awareness payload": (encode_awareness(b"\x01\x01\x01\x03abc"), None),
}


@pytest.mark.parametrize("frame, reason", REJECTED_FRAMES.values(), ids=REJECTED_FRAMES.keys())
def test_malformed_frame_raises_protocol_error(frame: bytes, reason: str | None) -> None:
    with pytest.raises(ProtocolError, match=reason):
        decode_message(frame)


def test_protocol_error_is_a_value_error() -> None:
    """Callers that already handle ValueError for bad input keep working."""
    assert issubclass(ProtocolError, ValueError)


def test_every_strict_prefix_of_a_valid_frame_is_rejected() -> None:
    frames = [
        encode_sync_step1(rich_doc().get_state()),
        encode_sync_step2(rich_doc().get_update()),
        encode_update(keystroke_update()),
        AwarenessMessage.from_entries([AwarenessEntry(1, 1, {"a": 1})]).payload,
        encode_permission_denied("no"),
    ]
    for frame in frames:
        for cut in range(len(frame)):
            with pytest.raises(ProtocolError):
                decode_message(frame[:cut])


# --------------------------------------------------------------------------------------------------
# Update validation
# --------------------------------------------------------------------------------------------------


def test_validate_update_accepts_updates_pycrdt_writes() -> None:
    validate_update(rich_doc().get_update())
    validate_update(keystroke_update())
    validate_update(EMPTY_UPDATE)
    validate_update(Doc().get_update())


def test_validate_update_accepts_an_update_whose_dependencies_are_missing() -> None:
    """Pending structs are legal (they arrive out of order across nodes); yrs keeps them pending."""
    validate_update(keystroke_update())  # depends on content the throwaway doc has never seen


def test_validate_update_accepts_a_pycrdt_update_with_deletions_and_gc() -> None:
    doc = Doc()
    root = doc.get("map", type=Map)
    root["child"] = Map({"x": "y"})
    root["child"] = "replaced"  # the child map's structs become garbage
    text = doc.get("text", type=Text)
    text += "abcdef"
    del text[1:4]
    validate_update(doc.get_update())


@pytest.mark.parametrize(
    "update",
    [b"", b"\x00", b"\xde\xad\xbe\xef", b"\xff" * 32, bytes(range(256)), EMPTY_UPDATE + b"\x00"],
    ids=["empty", "one byte", "deadbeef", "0xff run", "byte ramp", "trailing byte"],
)
def test_validate_update_rejects_garbage(update: bytes) -> None:
    with pytest.raises(ProtocolError):
        validate_update(update)


def test_validate_update_rejects_deep_nesting_that_crashes_yrs() -> None:
    """100k nested arrays overflow yrs' decoder stack (SIGSEGV); the walk must stop it first."""
    nested = b"\x75\x01" * 100_000 + b"\x7e"
    update = single_item_update(ANY_REF, ROOT_PARENT + b"\x01" + nested)
    with pytest.raises(ProtocolError, match="nested deeper"):
        validate_update(update)


def test_validate_update_accepts_nesting_up_to_the_limit() -> None:
    nested = b"\x75\x01" * (MAX_NESTING_DEPTH - 1) + b"\x7e"
    validate_update(single_item_update(ANY_REF, ROOT_PARENT + b"\x01" + nested))


def test_validate_update_rejects_a_huge_struct_count_without_allocating() -> None:
    update = b"\x01" + write_var_uint(2**40) + b"\x01\x00\x04"
    with pytest.raises(ProtocolError, match="needs at least"):
        validate_update(update)


def test_validate_update_rejects_client_ids_yrs_would_truncate() -> None:
    body = ROOT_PARENT + var_bytes(b"x")
    validate_update(single_item_update(STRING_REF, body, client=MAX_SAFE_INTEGER))
    with pytest.raises(ProtocolError, match="exceeds"):
        validate_update(single_item_update(STRING_REF, body, client=MAX_SAFE_INTEGER + 1))


def test_validate_update_rejects_clocks_yrs_would_wrap() -> None:
    body = ROOT_PARENT + var_bytes(b"x")
    validate_update(single_item_update(STRING_REF, body, clock=MAX_YJS_CLOCK - 1))
    with pytest.raises(ProtocolError, match="u32"):
        validate_update(single_item_update(STRING_REF, body, clock=MAX_YJS_CLOCK))


def test_validate_update_rejects_a_delete_range_beyond_u32() -> None:
    update = b"\x00\x01\x05\x01" + write_var_uint(MAX_YJS_CLOCK) + b"\x01"
    with pytest.raises(ProtocolError, match="u32"):
        validate_update(update)


HAND_BUILT_BAD_UPDATES = {
    "zero-length string": (single_item_update(STRING_REF, ROOT_PARENT + b"\x00"), "zero-length"),
    "zero-length GC": (single_item_update(0, b"\x00"), "zero-length"),
    "unknown content ref 11": (single_item_update(11, ROOT_PARENT), "content ref 11"),
    "unknown shared type ref": (single_item_update(TYPE_REF, ROOT_PARENT + b"\x07"), "type ref"),
    "unknown any tag": (single_item_update(ANY_REF, ROOT_PARENT + b"\x01\x70"), "any value tag"),
    "non-canonical integer": (
        single_item_update(ANY_REF, ROOT_PARENT + b"\x01\x7d\x81\x00"),
        "redundant trailing zero",
    ),
    "non-canonical string length": (
        single_item_update(STRING_REF, ROOT_PARENT + b"\x81\x00x"),
        "redundant trailing zero",
    ),
    "embed is not JSON": (
        single_item_update(EMBED_REF, ROOT_PARENT + var_bytes(b"{nope")),
        "not valid JSON",
    ),
    "format value is NaN": (
        single_item_update(FORMAT_REF, ROOT_PARENT + var_bytes(b"bold") + var_bytes(b"NaN")),
        "NaN",
    ),
    "legacy JSON content is not JSON": (
        single_item_update(JSON_REF, ROOT_PARENT + b"\x01" + var_bytes(b"[1,")),
        "not valid JSON",
    ),
    "string is not UTF-8": (
        single_item_update(STRING_REF, ROOT_PARENT + var_bytes(b"\xc3\x28")),
        "UTF-8",
    ),
    "root name is not UTF-8": (
        single_item_update(STRING_REF, b"\x01" + var_bytes(b"\xff") + var_bytes(b"x")),
        "UTF-8",
    ),
    "string length beyond the update": (
        single_item_update(STRING_REF, ROOT_PARENT + b"\x7f" + b"x"),
        "declares",
    ),
}


@pytest.mark.parametrize(
    "update, reason", HAND_BUILT_BAD_UPDATES.values(), ids=HAND_BUILT_BAD_UPDATES.keys()
)
def test_validate_update_rejects_structurally_invalid_updates(update: bytes, reason: str) -> None:
    with pytest.raises(ProtocolError, match=reason):
        validate_update(update)


def test_hand_built_update_helper_builds_valid_updates() -> None:
    """Guards the helper above: the same shape with valid content is accepted and applies."""
    update = single_item_update(STRING_REF, ROOT_PARENT + var_bytes("hé".encode()))
    validate_update(update)
    doc = Doc()
    doc.apply_update(update)
    assert str(doc.get("root", type=Text)) == "hé"


# --------------------------------------------------------------------------------------------------
# State vectors
# --------------------------------------------------------------------------------------------------


def test_validate_state_vector_accepts_real_state_vectors() -> None:
    validate_state_vector(rich_doc().get_state())
    validate_state_vector(b"\x00")


@pytest.mark.parametrize(
    "state_vector",
    [
        b"",
        b"\x01",
        b"\x01\x05",
        b"\x00\x00",
        write_var_uint(2**30) + b"\x01\x01",
        b"\x01\x05" + write_var_uint(MAX_YJS_CLOCK + 1),
    ],
    ids=["empty", "count only", "missing clock", "trailing", "huge count", "clock beyond u32"],
)
def test_validate_state_vector_rejects_malformed_input(state_vector: bytes) -> None:
    with pytest.raises(ProtocolError):
        validate_state_vector(state_vector)


# --------------------------------------------------------------------------------------------------
# Awareness payloads
# --------------------------------------------------------------------------------------------------


def awareness_payload(*entries: tuple[int, int, bytes]) -> bytes:
    parts = [write_var_uint(len(entries))]
    for client_id, clock, state_json in entries:
        parts += [write_var_uint(client_id), write_var_uint(clock), var_bytes(state_json)]
    return b"".join(parts)


def test_decode_awareness_reads_states_and_removals() -> None:
    payload = awareness_payload((5, 2, b'{"user":{"name":"Ana"}}'), (6, 9, b"null"))
    assert decode_awareness(payload) == [
        AwarenessEntry(client_id=5, clock=2, state={"user": {"name": "Ana"}}),
        AwarenessEntry(client_id=6, clock=9, state=None),
    ]


def test_encode_awareness_entries_matches_json_stringify() -> None:
    """Compact separators and raw UTF-8, as JS ``JSON.stringify`` writes them."""
    payload = encode_awareness_entries([AwarenessEntry(1, 2, {"name": "Zoë", "n": [1, 2]})])
    assert payload == awareness_payload((1, 2, '{"name":"Zoë","n":[1,2]}'.encode()))


def test_awareness_state_at_the_size_limit_is_accepted() -> None:
    padding = "x" * (MAX_AWARENESS_STATE_BYTES - len('{"p":""}'))
    entry = AwarenessEntry(1, 1, {"p": padding})
    assert decode_awareness(encode_awareness_entries([entry])) == [entry]


BAD_AWARENESS_PAYLOADS = {
    "empty": (b"", "truncated"),
    "bad JSON": (awareness_payload((1, 1, b"{nope")), "not valid JSON"),
    "empty state string": (awareness_payload((1, 1, b"")), "not valid JSON"),
    "array state": (awareness_payload((1, 1, b"[1]")), "object or null"),
    "number state": (awareness_payload((1, 1, b"42")), "object or null"),
    "string state": (awareness_payload((1, 1, b'"hi"')), "object or null"),
    "NaN inside the state": (awareness_payload((1, 1, b'{"a":NaN}')), "NaN"),
    "state not UTF-8": (awareness_payload((1, 1, b'{"a":"\xff"}')), "UTF-8"),
    "state too large": (
        awareness_payload((1, 1, b'{"p":"' + b"x" * MAX_AWARENESS_STATE_BYTES + b'"}')),
        "exceeds",
    ),
    "count larger than the bytes": (write_var_uint(10_000) + b"\x01\x01\x02{}", "needs at least"),
    "trailing bytes": (awareness_payload((1, 1, b"{}")) + b"\x00", "trailing"),
    "truncated clock": (b"\x01\x05\x80\x80", "truncated"),
}


@pytest.mark.parametrize(
    "payload, reason", BAD_AWARENESS_PAYLOADS.values(), ids=BAD_AWARENESS_PAYLOADS.keys()
)
def test_decode_awareness_rejects_malformed_payloads(payload: bytes, reason: str) -> None:
    with pytest.raises(ProtocolError, match=reason):
        decode_awareness(payload)


def test_encode_awareness_entries_refuses_states_it_could_not_decode() -> None:
    with pytest.raises(ProtocolError, match="exceeds"):
        encode_awareness_entries([AwarenessEntry(1, 1, {"p": "x" * MAX_AWARENESS_STATE_BYTES})])
    with pytest.raises(ProtocolError, match="JSON"):
        encode_awareness_entries([AwarenessEntry(1, 1, {"nan": float("nan")})])


# --------------------------------------------------------------------------------------------------
# The pycrdt boundary guard
# --------------------------------------------------------------------------------------------------


def remove_beyond_end_of_text() -> None:
    """Makes yrs panic: pyo3 raises PanicException, which is not an Exception subclass."""
    text = Doc().get("text", type=Text)
    text += "abc"
    del text[1:100]


def test_call_pycrdt_converts_a_real_rust_panic() -> None:
    with pytest.raises(BaseException) as raw:
        remove_beyond_end_of_text()
    assert not isinstance(raw.value, Exception)  # the hazard this guard exists for
    with pytest.raises(ProtocolError, match="PanicException"):
        call_pycrdt("text edit", remove_beyond_end_of_text)


@pytest.mark.parametrize("stop", [KeyboardInterrupt, SystemExit, asyncio.CancelledError])
def test_call_pycrdt_lets_stop_signals_through(stop: type[BaseException]) -> None:
    def raise_stop() -> None:
        raise stop()

    with pytest.raises(stop):
        call_pycrdt("anything", raise_stop)
