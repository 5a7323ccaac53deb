"""Property-based fuzzing of the y-websocket codec (security row S1 of RELIABILITY.md).

Every property has the same oracle: decoding arbitrary input either returns a typed message or
raises ``ProtocolError`` -- never ``IndexError``, ``RecursionError``, a pyo3 ``PanicException``
or a crash -- and whatever it returns re-encodes to the very bytes it came from.

Example counts: CI runs ``FUZZ_EXAMPLES_CI`` examples per property (a few seconds in total). The
S1 row asks for >= 10**5 cases per message type; run them with

    HYPOTHESIS_PROFILE=deep python -m pytest -q tests/test_protocol_fuzz.py -p no:cacheprovider

The profiles are registered here rather than in conftest.py so this module stays self-contained
and does not change the settings of anyone else's hypothesis tests.
"""

from __future__ import annotations

import os

import pycrdt
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pycrdt import Array, Doc, Map, Text, write_var_uint

from live.protocol import (
    EMPTY_UPDATE,
    AwarenessEntry,
    AwarenessMessage,
    MessageType,
    ProtocolError,
    SyncStep2,
    SyncUpdate,
    YSyncMessageType,
    decode_awareness,
    decode_message,
    encode_awareness,
    encode_awareness_entries,
    encode_message,
    encode_sync_step1,
    encode_sync_step2,
    encode_update,
    validate_state_vector,
    validate_update,
)

FUZZ_EXAMPLES_CI = 2_000
FUZZ_EXAMPLES_DEEP = 100_000

settings.register_profile(
    "protocol-fuzz-ci",
    max_examples=FUZZ_EXAMPLES_CI,
    deadline=None,  # the first pycrdt call of a run is slow; timing is not what is tested here
    suppress_health_check=[HealthCheck.too_slow],
)
settings.register_profile(
    "deep",
    max_examples=FUZZ_EXAMPLES_DEEP,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
DEEP = os.environ.get("HYPOTHESIS_PROFILE") == "deep"
FUZZ = settings.get_profile("deep" if DEEP else "protocol-fuzz-ci")
# Round trips of generated *valid* messages are correctness checks, not S1 fuzzing, and building
# random docs is slow: a few hundred examples are enough in CI.
ROUND_TRIP = settings(FUZZ, max_examples=FUZZ_EXAMPLES_DEEP if DEEP else 300)
# A deep run takes minutes per property: lift setup.cfg's per-test timeout for it (pytest-timeout
# interrupting hypothesis mid-run is reported as a confusing FlakyStrategyDefinition).
pytestmark = [pytest.mark.timeout(0)] if DEEP else []


def decode_or_reject(frame: bytes) -> None:
    """The oracle: a typed message that re-encodes to ``frame``, or ProtocolError."""
    try:
        message = decode_message(frame)
    except ProtocolError:
        return
    assert encode_message(message) == frame


def validate_or_reject(update: bytes) -> None:
    try:
        validate_update(update)
    except ProtocolError:
        return
    # Accepted: pycrdt must then be able to apply it, or it would poison the stream.
    Doc().apply_update(update)


# --------------------------------------------------------------------------------------------------
# Strategies
# --------------------------------------------------------------------------------------------------

KNOWN_TYPES = [int(message_type) for message_type in MessageType]
SYNC_TYPES = [int(sync_type) for sync_type in YSyncMessageType]

continuation_bytes = st.binary(min_size=1, max_size=12).map(
    lambda data: bytes(byte | 0x80 for byte in data)
)  # every byte says "more follows": a truncated varint


def var_uint_bytes(min_value: int = 0, max_value: int = 2**64) -> st.SearchStrategy[bytes]:
    return st.integers(min_value, max_value).map(write_var_uint)


def sample_updates() -> list[bytes]:
    """Small real updates (text, map, array, deletions) to mutate."""
    doc = Doc()
    updates: list[bytes] = []
    doc.observe(lambda event: updates.append(event.update))
    text = doc.get("text", type=Text)
    text += "hello wörld"
    del text[2:5]
    doc.get("map", type=Map).update({"k": {"nested": [1, 2.5, None, "s"]}, "b": b"\x01"})
    doc.get("array", type=Array).extend([1, "two", Map({"x": True})])
    updates.append(doc.get_update())
    return updates


SAMPLE_UPDATES = sample_updates()
SAMPLE_FRAMES = [encode_update(update) for update in SAMPLE_UPDATES] + [
    encode_sync_step1(Doc().get_state()),
    encode_sync_step2(EMPTY_UPDATE),
    encode_awareness(encode_awareness_entries([AwarenessEntry(1, 2, {"cursor": {"a": 1}})])),
    b"\x03",
    b"\x02\x00\x02no",
]


@st.composite
def mutated(draw: st.DrawFn, originals: list[bytes]) -> bytes:
    """A valid input with a few bytes flipped, inserted, deleted, or the tail cut off."""
    data = bytearray(draw(st.sampled_from(originals)))
    for _ in range(draw(st.integers(1, 4))):
        operation = draw(st.sampled_from(["flip", "insert", "delete", "truncate"]))
        position = draw(st.integers(0, max(len(data) - 1, 0)))
        if operation == "flip" and data:
            data[position] ^= draw(st.integers(1, 255))
        elif operation == "insert":
            data[position:position] = draw(st.binary(min_size=1, max_size=4))
        elif operation == "delete" and data:
            del data[position]
        elif operation == "truncate":
            del data[position:]
    return bytes(data)


@st.composite
def framed_garbage(draw: st.DrawFn) -> bytes:
    """Valid outer framing (type, sync subtype, correct length) around a garbage payload."""
    payload = draw(st.binary(max_size=64))
    message_type = draw(st.sampled_from(KNOWN_TYPES))
    if message_type == MessageType.SYNC:
        sync_type = draw(st.sampled_from(SYNC_TYPES))
        return bytes([message_type, sync_type]) + write_var_uint(len(payload)) + payload
    return bytes([message_type]) + write_var_uint(len(payload)) + payload


@st.composite
def huge_length_prefix(draw: st.DrawFn) -> bytes:
    """A frame whose length prefix promises far more bytes than follow."""
    header = draw(st.sampled_from([b"\x00\x00", b"\x00\x01", b"\x00\x02", b"\x01", b"\x02\x00"]))
    length = draw(st.integers(65, 2**64))
    return header + write_var_uint(length) + draw(st.binary(max_size=64))


hostile_awareness_states = st.one_of(
    st.binary(max_size=40),
    st.sampled_from([b"null", b"{}", b"[]", b"1", b'"s"', b"NaN", b'{"a":Infinity}', b"{"]),
    st.dictionaries(st.text(max_size=3), st.none() | st.integers(), max_size=2).map(
        lambda value: repr(value).encode()  # Python repr: almost JSON, usually not
    ),
)
awareness_entry_parts = st.tuples(var_uint_bytes(), var_uint_bytes(), hostile_awareness_states)


@st.composite
def awareness_like(draw: st.DrawFn) -> bytes:
    """Awareness payloads with plausible framing and hostile states (or a lying count)."""
    entries = draw(st.lists(awareness_entry_parts, max_size=4))
    count = draw(st.one_of(st.just(len(entries)), st.integers(0, 2**60)))
    parts = [write_var_uint(count)]
    for client_id, clock, state in entries:
        parts += [client_id, clock, write_var_uint(len(state)), state]
    return b"".join(parts)


# --------------------------------------------------------------------------------------------------
# Properties over whole frames
# --------------------------------------------------------------------------------------------------


@FUZZ
@given(st.binary(max_size=256))
def test_random_bytes_decode_or_raise_protocol_error(frame: bytes) -> None:
    decode_or_reject(frame)


@FUZZ
@given(st.binary(max_size=4).flatmap(lambda prefix: continuation_bytes.map(prefix.__add__)))
def test_truncated_varints_raise_protocol_error(frame: bytes) -> None:
    decode_or_reject(frame)


@FUZZ
@given(st.integers(1, 300), st.binary(max_size=8))
def test_runs_of_0xff_raise_protocol_error(length: int, tail: bytes) -> None:
    decode_or_reject(b"\xff" * length + tail)


@FUZZ
@given(huge_length_prefix())
def test_huge_length_prefixes_raise_protocol_error(frame: bytes) -> None:
    decode_or_reject(frame)


@FUZZ
@given(framed_garbage())
def test_valid_framing_with_garbage_payload_decodes_or_raises(frame: bytes) -> None:
    decode_or_reject(frame)


@FUZZ
@given(st.integers(4, 2**60), st.binary(max_size=16))
def test_unknown_message_types_raise_protocol_error(message_type: int, rest: bytes) -> None:
    decode_or_reject(write_var_uint(message_type) + rest)


@FUZZ
@given(st.integers(3, 2**60), st.binary(max_size=16))
def test_unknown_sync_types_raise_protocol_error(sync_type: int, rest: bytes) -> None:
    decode_or_reject(b"\x00" + write_var_uint(sync_type) + rest)


@FUZZ
@given(mutated(SAMPLE_FRAMES))
def test_mutated_valid_frames_decode_or_raise(frame: bytes) -> None:
    decode_or_reject(frame)


@FUZZ
@given(st.sampled_from(SAMPLE_FRAMES), st.binary(min_size=1, max_size=8))
def test_trailing_garbage_after_a_valid_frame_is_rejected(frame: bytes, garbage: bytes) -> None:
    try:
        decode_message(frame + garbage)
    except ProtocolError:
        return
    raise AssertionError(f"trailing bytes accepted: {garbage!r}")


# --------------------------------------------------------------------------------------------------
# Properties per payload kind
# --------------------------------------------------------------------------------------------------


@FUZZ
@given(st.binary(max_size=256))
def test_random_bytes_are_not_accepted_as_updates_unless_pycrdt_applies_them(data: bytes) -> None:
    validate_or_reject(data)


@FUZZ
@given(mutated(SAMPLE_UPDATES))
def test_mutated_real_updates_validate_or_raise(update: bytes) -> None:
    validate_or_reject(update)


@FUZZ
@given(st.binary(max_size=64) | mutated([Doc().get_state(), b"\x02\x01\x05\x83\x01\x07"]))
def test_state_vectors_validate_or_raise(state_vector: bytes) -> None:
    try:
        validate_state_vector(state_vector)
    except ProtocolError:
        return
    pycrdt.Doc().get_update(state_vector)  # accepted ones must be usable by the room's doc


@FUZZ
@given(awareness_like() | st.binary(max_size=128))
def test_awareness_payloads_decode_or_raise(payload: bytes) -> None:
    try:
        entries = decode_awareness(payload)
    except ProtocolError:
        return
    for entry in entries:
        assert entry.state is None or isinstance(entry.state, dict)
    decode_or_reject(encode_awareness(payload))


# --------------------------------------------------------------------------------------------------
# Round trips of generated valid messages
# --------------------------------------------------------------------------------------------------

json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**53) + 1, 2**53 - 1)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=8),
    lambda children: (
        st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=4), children, max_size=3)
    ),
    max_leaves=10,
)
awareness_entries = st.builds(
    AwarenessEntry,
    client_id=st.integers(0, 2**53 - 1),
    clock=st.integers(0, 2**53 - 1),
    state=st.none() | st.dictionaries(st.text(max_size=6), json_values, max_size=4),
)


@ROUND_TRIP
@given(st.lists(awareness_entries, max_size=5))
def test_generated_awareness_round_trips(entries: list[AwarenessEntry]) -> None:
    message = AwarenessMessage.from_entries(entries)
    decoded = decode_message(encode_message(message))
    assert decoded == message


# ASCII only: pycrdt's Text indices are not Python string indices for non-ASCII text, and a delete
# past the end panics in yrs; non-ASCII content is covered by the codec tests and JS fixtures.
edit_text = st.text(alphabet=st.characters(min_codepoint=0x20, max_codepoint=0x7E), max_size=6)


@st.composite
def edited_doc_update(draw: st.DrawFn) -> bytes:
    """A full-state update of a doc after a random sequence of text, map and array edits."""
    doc = Doc()
    text = doc.get("text", type=Text)
    root_map = doc.get("map", type=Map)
    array = doc.get("array", type=Array)
    for _ in range(draw(st.integers(1, 8))):
        kind = draw(st.sampled_from(["insert", "delete", "map", "array"]))
        if kind == "insert":
            text.insert(draw(st.integers(0, len(text))), draw(edit_text))
        elif kind == "delete" and len(text):
            start = draw(st.integers(0, len(text) - 1))
            del text[start : draw(st.integers(start + 1, len(text)))]
        elif kind == "map":
            root_map[draw(st.text(max_size=4))] = draw(json_values)
        else:
            array.append(draw(json_values))
    return doc.get_update()


@ROUND_TRIP
@given(edited_doc_update(), st.sampled_from([SyncStep2, SyncUpdate]))
def test_updates_of_randomly_edited_docs_round_trip(
    update: bytes, message_type: type[SyncStep2] | type[SyncUpdate]
) -> None:
    message = message_type(update)
    assert decode_message(encode_message(message)) == message
