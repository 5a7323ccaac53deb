"""Awareness in the y-websocket codec: y-protocols awareness updates (client id, clock, JSON
state per entry) and the awareness / query-awareness frames."""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from pycrdt import write_var_uint

from core.yjs import ProtocolError
from live.protocol.wire import MessageType, Reader, parse_json, write_var_bytes

#: One client's awareness state (cursor, selection, user name/colour) is a few hundred bytes in
#: practice. 64 KiB leaves room for rich presence payloads while stopping a client from making
#: every peer parse and store a megabyte per awareness tick (security row S2: "1 MB state").
MAX_AWARENESS_STATE_BYTES = 64 * 1024

_MIN_AWARENESS_ENTRY_BYTES = 3  # varuint client + varuint clock + varstring length


@dataclass(frozen=True, slots=True)
class AwarenessEntry:
    """One client's awareness state; ``state is None`` means the client left (JSON ``null``)."""

    client_id: int
    clock: int
    state: dict[str, Any] | None


@dataclass(frozen=True, slots=True)
class AwarenessMessage:
    """An awareness update.

    ``payload`` keeps the exact wire bytes so a relay can forward them without re-encoding;
    ``entries`` is the decoded, validated content (needed to bind client ids to a connection).
    """

    payload: bytes
    entries: tuple[AwarenessEntry, ...]

    @classmethod
    def from_entries(cls, entries: Iterable[AwarenessEntry]) -> AwarenessMessage:
        """Build a message (payload included) from decoded entries."""
        entries = tuple(entries)
        return cls(payload=encode_awareness_entries(entries), entries=entries)


@dataclass(frozen=True, slots=True)
class QueryAwareness:
    """A request for every awareness state the receiver knows."""


def decode_awareness(payload: bytes) -> list[AwarenessEntry]:
    """Decode a y-protocols awareness update (count, then client id, clock, JSON state each).

    A state must be a JSON object or ``null`` (the client left); anything else, a state above
    :data:`MAX_AWARENESS_STATE_BYTES`, or a count the bytes cannot hold is a :class:`ProtocolError`.
    """
    reader = Reader(bytes(payload))
    count = reader.read_count("awareness entry count", _MIN_AWARENESS_ENTRY_BYTES)
    entries = [_read_awareness_entry(reader) for _ in range(count)]
    reader.expect_end("the awareness update")
    return entries


def _read_awareness_entry(reader: Reader) -> AwarenessEntry:
    client_id = reader.read_var_uint("awareness client id")
    clock = reader.read_var_uint("awareness clock")
    state_length = reader.read_var_uint("awareness state length")
    if state_length > MAX_AWARENESS_STATE_BYTES:
        raise ProtocolError(
            f"awareness state of {state_length} bytes exceeds {MAX_AWARENESS_STATE_BYTES}"
        )
    raw_state = reader.read_bytes(state_length, "awareness state")
    try:
        text = raw_state.decode("utf-8")
    except UnicodeDecodeError as err:
        raise ProtocolError("awareness state is not valid UTF-8") from err
    state = parse_json(text, "awareness state")
    if state is not None and not isinstance(state, dict):
        kind = type(state).__name__
        raise ProtocolError(f"awareness state must be a JSON object or null, not {kind}")
    return AwarenessEntry(client_id=client_id, clock=clock, state=state)


def encode_awareness_entries(entries: Iterable[AwarenessEntry]) -> bytes:
    """Encode an awareness update the way y-protocols ``encodeAwarenessUpdate`` does."""
    entries = tuple(entries)
    parts = [write_var_uint(len(entries))]
    for entry in entries:
        state_json = _dump_awareness_state(entry.state)
        parts.append(write_var_uint(entry.client_id))
        parts.append(write_var_uint(entry.clock))
        parts.append(write_var_bytes(state_json))
    return b"".join(parts)


def _dump_awareness_state(state: dict[str, Any] | None) -> bytes:
    """Serialize like JS ``JSON.stringify`` (compact, UTF-8, no NaN) and enforce the size limit."""
    try:
        text = json.dumps(state, separators=(",", ":"), ensure_ascii=False, allow_nan=False)
    except (TypeError, ValueError) as err:
        raise ProtocolError(f"awareness state is not JSON-serializable: {err}") from err
    raw = text.encode("utf-8")
    if len(raw) > MAX_AWARENESS_STATE_BYTES:
        raise ProtocolError(
            f"awareness state of {len(raw)} bytes exceeds {MAX_AWARENESS_STATE_BYTES}"
        )
    return raw


def encode_awareness(payload: bytes) -> bytes:
    """Frame an already-encoded awareness update (e.g. one relayed from NATS)."""
    return bytes((MessageType.AWARENESS,)) + write_var_bytes(bytes(payload))


def encode_query_awareness() -> bytes:
    """Frame a request for every awareness state the peer knows."""
    return bytes((MessageType.QUERY_AWARENESS,))


def decode_awareness_frame(reader: Reader) -> AwarenessMessage:
    payload = reader.read_var_bytes("awareness payload")
    return AwarenessMessage(payload=payload, entries=tuple(decode_awareness(payload)))


def awareness_frame_client_ids(frame: bytes) -> list[int] | None:
    """The client ids an awareness frame's entries name, read without parsing their states.

    None when `frame` is not a well-formed awareness frame (the full decode then says why). The
    sizes are checked as `decode_awareness` checks them; the states are skipped, not parsed.
    """
    try:
        reader = Reader(frame)
        if reader.read_uint8("message type") != MessageType.AWARENESS:
            return None
        payload = Reader(reader.read_var_bytes("awareness payload"))
        reader.expect_end("the message")
        count = payload.read_count("awareness entry count", _MIN_AWARENESS_ENTRY_BYTES)
        ids = []
        for _ in range(count):
            ids.append(payload.read_var_uint("awareness client id"))
            payload.read_var_uint("awareness clock")
            length = payload.read_var_uint("awareness state length")
            if length > MAX_AWARENESS_STATE_BYTES:
                return None
            payload.read_bytes(length, "awareness state")
        payload.expect_end("the awareness update")
    except ProtocolError:
        return None
    return ids


def decode_query_awareness(_reader: Reader) -> QueryAwareness:
    return QueryAwareness()
