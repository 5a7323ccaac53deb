"""Pure codec for the y-websocket binary protocol (no I/O, no Tornado, no NATS).

The server speaks the protocol of the stock npm ``y-websocket`` ``WebsocketProvider`` so that real
Yjs clients work unchanged. Every frame starts with a lib0 varuint message type:

* ``0`` sync: a sync submessage type (step 1 / step 2 / update) and a length-prefixed payload
  (a state vector for step 1, a Yjs v1 update otherwise) -- see y-protocols ``sync.js``;
* ``1`` awareness: a length-prefixed awareness update -- see y-protocols ``awareness.js``;
* ``2`` auth: submessage ``0`` = permission denied + reason string -- see y-protocols ``auth.js``;
* ``3`` query-awareness: no payload; the peer answers with every awareness state it knows.

Why this module exists instead of pycrdt's ``Decoder``/``handle_sync_message``: those helpers trust
their input (an empty or truncated frame raises ``IndexError``/``AssertionError``, a frame with
trailing bytes is silently accepted) and the Rust decoder under ``Doc.apply_update`` has sharper
edges still (measured with pycrdt 0.14.13: an ``Any`` value nested 100k deep overflows its stack and
kills the process with SIGSEGV; client ids >= 2**53 and clocks >= 2**32 are silently truncated, so
the server's doc would diverge from the Yjs clients' docs; trailing bytes after an update are
ignored). Frames come from untrusted sockets and updates are published to JetStream, where a poison
update would break every later load of the document, so this codec is **strict and total**:
decoding any bytes either returns a typed message whose payload is proven well-formed, or raises
:class:`ProtocolError`. No other exception escapes, including the pyo3 ``PanicException`` that
pycrdt raises as a ``BaseException`` subclass.

Lengths and counts are bounded by the bytes actually present before anything is allocated or
looped over, so a 10-byte frame announcing 2**50 items costs microseconds, not memory.
"""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from enum import IntEnum
from typing import Any, TypeVar

import pycrdt
from pycrdt import YSyncMessageType, write_var_uint

__all__ = [
    "EMPTY_UPDATE",
    "MAX_AWARENESS_STATE_BYTES",
    "MAX_NESTING_DEPTH",
    "MAX_SAFE_INTEGER",
    "MAX_YJS_CLIENT_ID",
    "MAX_YJS_CLOCK",
    "AuthMessage",
    "AuthMessageType",
    "AwarenessEntry",
    "AwarenessMessage",
    "Message",
    "MessageType",
    "ProtocolError",
    "QueryAwareness",
    "SyncStep1",
    "SyncStep2",
    "SyncUpdate",
    "YSyncMessageType",
    "call_pycrdt",
    "decode_awareness",
    "decode_message",
    "encode_awareness",
    "encode_awareness_entries",
    "encode_message",
    "encode_permission_denied",
    "encode_query_awareness",
    "encode_sync_step1",
    "encode_sync_step2",
    "encode_update",
    "validate_state_vector",
    "validate_update",
    "validate_update_structure",
]

# --------------------------------------------------------------------------------------------------
# Limits
# --------------------------------------------------------------------------------------------------

#: lib0 decodes varuints into JS numbers and throws above ``Number.MAX_SAFE_INTEGER``; accepting a
#: larger value here would let the server hold a number that no JS client can represent.
MAX_SAFE_INTEGER = 2**53 - 1

#: yrs (the Rust core of pycrdt) silently truncates client ids >= 2**53 (2**53 becomes client 0),
#: which would make the server's doc diverge from the JS clients' docs.
MAX_YJS_CLIENT_ID = MAX_SAFE_INTEGER

#: yrs stores clocks as u32 and wraps silently (a struct at clock 2**32 lands at clock 0); the end
#: of every struct and deletion range (clock + length) must therefore stay within u32.
MAX_YJS_CLOCK = 2**32 - 1

#: Maximum nesting of ``Any`` values (map/array inside map/array ...) in an update. yrs decodes
#: ``Any`` recursively and a 100k-deep value overflows its stack, which kills the whole process
#: (measured with pycrdt 0.14.13). 128 matches serde_json's default recursion limit, which yrs
#: already applies to JSON-encoded content, so no document yrs accepts is rejected by this limit.
MAX_NESTING_DEPTH = 128

#: One client's awareness state (cursor, selection, user name/colour) is a few hundred bytes in
#: practice. 64 KiB leaves room for rich presence payloads while stopping a client from making
#: every peer parse and store a megabyte per awareness tick (security row S2: "1 MB state").
MAX_AWARENESS_STATE_BYTES = 64 * 1024

#: 8 varuint bytes carry 56 bits, enough for any value up to 2**53 - 1. Longer and other
#: non-canonical encodings (a redundant trailing zero byte, like 0x81 0x00 for 1) are never written
#: by lib0 or yrs; lib0 would read them, this codec rejects them so that every message has exactly
#: one encoding (``encode_message(decode_message(frame)) == frame``).
_MAX_VAR_UINT_BYTES = 8
_VAR_UINT_PATTERN = re.compile(rb"[\x80-\xff]{0,%d}[\x00-\x7f]" % (_MAX_VAR_UINT_BYTES - 1))

_BITS5 = 0b0001_1111  # low bits of a struct's info byte: the content ref
_HAS_ORIGIN = 0b1000_0000  # info bit: a left origin ID follows
_HAS_RIGHT_ORIGIN = 0b0100_0000  # info bit: a right origin ID follows
_HAS_PARENT_SUB = 0b0010_0000  # info bit: a parent sub (map key) string follows

# Smallest possible encodings, used to reject counts the remaining bytes cannot hold before looping.
_MIN_STATE_VECTOR_ENTRY_BYTES = 2  # varuint client + varuint clock
_MIN_CLIENT_STRUCTS_HEADER_BYTES = 3  # varuint struct count + varuint client + varuint clock
_MIN_STRUCT_BYTES = 2  # info byte + at least one byte of length/content
_MIN_DELETE_SET_CLIENT_BYTES = 2  # varuint client + varuint range count
_MIN_DELETE_RANGE_BYTES = 2  # varuint clock + varuint length
_MIN_AWARENESS_ENTRY_BYTES = 3  # varuint client + varuint clock + varstring length
_MIN_ANY_BYTES = 1  # a tag byte alone (null, true, undefined ...)
_MIN_VAR_STRING_BYTES = 1  # a length byte alone (empty string)

#: A SyncStep2 carrying "nothing new" -- zero client structs, empty delete set. Clients send it on
#: every connect, so it skips the pycrdt round trip.
EMPTY_UPDATE = b"\x00\x00"


class ProtocolError(ValueError):
    """A frame, update, state vector or awareness payload is malformed.

    The one exception this module raises for bad input; callers answer the sender with an error
    (or a 44xx close) and keep the document and the connection's peers untouched.
    """


class MessageType(IntEnum):
    """Outer message type of a y-websocket frame (y-websocket ``messageSync`` ...)."""

    SYNC = 0
    AWARENESS = 1
    AUTH = 2
    QUERY_AWARENESS = 3


class AuthMessageType(IntEnum):
    """Submessage of an auth frame; y-protocols ``auth.js`` defines only permission-denied."""

    PERMISSION_DENIED = 0


# --------------------------------------------------------------------------------------------------
# Typed messages
# --------------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class SyncStep1:
    """A peer's state vector: "send me everything I have not seen"."""

    state_vector: bytes


@dataclass(frozen=True, slots=True)
class SyncStep2:
    """The answer to a :class:`SyncStep1`: a Yjs v1 update with everything the peer lacked."""

    update: bytes


@dataclass(frozen=True, slots=True)
class SyncUpdate:
    """An incremental Yjs v1 update made after the initial sync."""

    update: bytes


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


@dataclass(frozen=True, slots=True)
class AuthMessage:
    """Permission denied (the only auth submessage y-protocols defines), with a human reason.

    The stock provider only logs it; the connection stays open, which is what the server wants for
    a viewer whose update was rejected.
    """

    reason: str


Message = SyncStep1 | SyncStep2 | SyncUpdate | AwarenessMessage | QueryAwareness | AuthMessage


# --------------------------------------------------------------------------------------------------
# Strict lib0 reader
# --------------------------------------------------------------------------------------------------


class _Reader:
    """Bounds-checked lib0 decoder over one buffer; every failure is a :class:`ProtocolError`."""

    __slots__ = ("_data", "_pos", "_var_uint_cache")

    def __init__(self, data: bytes) -> None:
        self._data = data
        self._pos = 0
        self._var_uint_cache: dict[bytes, int] = {}

    @property
    def remaining(self) -> int:
        return len(self._data) - self._pos

    def read_uint8(self, what: str) -> int:
        if self._pos >= len(self._data):
            raise ProtocolError(f"truncated {what}: expected 1 byte, frame ended")
        byte = self._data[self._pos]
        self._pos += 1
        return byte

    def read_var_uint(self, what: str, maximum: int = MAX_SAFE_INTEGER) -> int:
        """Read a lib0 varuint (7 bits per byte, little-endian, high bit = more bytes follow)."""
        data, pos, end = self._data, self._pos, len(self._data)
        if pos < end and data[pos] < 0x80:  # fast path: one byte, by far the most common case
            self._pos = pos + 1
            value = data[pos]
        else:
            value = self._read_multibyte_var_uint(what)
        if value > maximum:
            raise ProtocolError(f"{what} {value} exceeds the maximum {maximum}")
        return value

    def _read_multibyte_var_uint(self, what: str) -> int:
        # The regex finds the varint's extent in C; the per-reader cache pays off because the same
        # 8-byte client ids repeat in every origin of an update.
        data, pos = self._data, self._pos
        match = _VAR_UINT_PATTERN.match(data, pos)
        if match is None:
            if len(data) - pos >= _MAX_VAR_UINT_BYTES:
                raise ProtocolError(f"{what} varint is longer than {_MAX_VAR_UINT_BYTES} bytes")
            raise ProtocolError(f"truncated {what}: varint runs past the end of the frame")
        encoded = match.group()
        if encoded[-1] == 0 and len(encoded) > 1:
            raise ProtocolError(f"{what} varint has a redundant trailing zero byte")
        self._pos = match.end()
        value = self._var_uint_cache.get(encoded)
        if value is None:
            value = _var_uint_value(encoded)
            self._var_uint_cache[encoded] = value
        if value > MAX_SAFE_INTEGER:
            raise ProtocolError(f"{what} varint exceeds 2**53 - 1")
        return value

    def read_var_int(self, what: str) -> int:
        """Read a lib0 signed varint (first byte: continuation bit, sign bit, 6 value bits)."""
        first = self.read_uint8(what)
        value = first & 0x3F
        sign = -1 if first & 0x40 else 1
        if first & 0x80:
            rest = self._read_multibyte_var_uint(what)
            if rest == 0:
                raise ProtocolError(f"{what} varint has a redundant trailing zero byte")
            if rest > MAX_SAFE_INTEGER >> 6:
                raise ProtocolError(f"{what} varint exceeds 2**53 - 1")
            value |= rest << 6
        return sign * value

    def read_bytes(self, length: int, what: str) -> bytes:
        if length > self.remaining:
            raise ProtocolError(
                f"{what} declares {length} bytes but only {self.remaining} remain in the frame"
            )
        start = self._pos
        self._pos += length
        return self._data[start : self._pos]

    def read_var_bytes(self, what: str) -> bytes:
        """Read a lib0 ``varUint8Array``: varuint length, then that many bytes."""
        return self.read_bytes(self.read_var_uint(what), what)

    def read_var_string(self, what: str) -> str:
        """Read a lib0 ``varString``: varuint UTF-8 byte length, then strict UTF-8."""
        raw = self.read_var_bytes(what)
        try:
            return raw.decode("utf-8")
        except UnicodeDecodeError as err:
            raise ProtocolError(f"{what} is not valid UTF-8") from err

    def read_count(self, what: str, min_item_bytes: int) -> int:
        """Read an item count and reject it if the remaining bytes cannot possibly hold it."""
        count = self.read_var_uint(what)
        if count * min_item_bytes > self.remaining:
            raise ProtocolError(
                f"{what} {count} needs at least {count * min_item_bytes} bytes "
                f"but only {self.remaining} remain"
            )
        return count

    def expect_end(self, what: str) -> None:
        if self.remaining:
            raise ProtocolError(f"{self.remaining} trailing bytes after {what}")


def _var_uint_value(encoded: bytes) -> int:
    """Value of a complete varuint: 7 bits per byte, least significant group first."""
    value = 0
    for shift, byte in enumerate(encoded):
        value |= (byte & 0x7F) << (7 * shift)
    return value


def _write_var_bytes(data: bytes) -> bytes:
    return write_var_uint(len(data)) + data


def _write_var_string(text: str) -> bytes:
    # pycrdt's Encoder.write_var_string writes len(text) -- characters, not bytes -- so non-ASCII
    # text would be mis-framed; lib0 prefixes the UTF-8 byte length.
    return _write_var_bytes(text.encode("utf-8"))


# --------------------------------------------------------------------------------------------------
# Guarded calls into pycrdt
# --------------------------------------------------------------------------------------------------

_T = TypeVar("_T")


def call_pycrdt(what: str, function: Callable[..., _T], *args: Any) -> _T:
    """Call into pycrdt, turning anything it raises on bad input into :class:`ProtocolError`.

    Public because the rooms need the same guard around ``apply_update`` on the live doc
    (DESIGN section 7: a Rust panic must not abort the socket or the node). pyo3 maps a Rust panic
    to ``PanicException``, a ``BaseException`` subclass that ``except Exception`` does not stop; it
    has escaped such handlers in systems like ours. Only the exceptions that mean "stop this task or
    process" are let through.
    """
    try:
        return function(*args)
    except (KeyboardInterrupt, SystemExit, asyncio.CancelledError):
        raise
    except BaseException as err:  # PanicException is a BaseException: see the docstring
        raise ProtocolError(f"{what} rejected by pycrdt: {type(err).__name__}: {err}") from err


def _apply_to_throwaway_doc(update: bytes) -> None:
    pycrdt.Doc().apply_update(update)


# --------------------------------------------------------------------------------------------------
# Yjs v1 update and state vector validation
# --------------------------------------------------------------------------------------------------

# Content refs of an Item (Yjs ``contentRefs``); 0 = GC and 10 = Skip are structs, not items.
_GC_REF = 0
_DELETED_REF = 1
_JSON_REF = 2
_BINARY_REF = 3
_STRING_REF = 4
_EMBED_REF = 5
_FORMAT_REF = 6
_TYPE_REF = 7
_ANY_REF = 8
_DOC_REF = 9
_SKIP_REF = 10

# Shared type refs (Yjs ``typeRefs``); XmlElement and XmlHook carry a name string.
_XML_ELEMENT_TYPE_REF = 3
_XML_HOOK_TYPE_REF = 5
_MAX_TYPE_REF = 6

# lib0 ``Any`` tags (lib0 ``readAnyLookupTable``, counted down from 127).
_ANY_UNDEFINED, _ANY_NULL, _ANY_FALSE, _ANY_TRUE = 127, 126, 121, 120
_ANY_VAR_INT, _ANY_FLOAT32, _ANY_FLOAT64, _ANY_BIGINT64 = 125, 124, 123, 122
_ANY_STRING, _ANY_OBJECT, _ANY_ARRAY, _ANY_BYTES = 119, 118, 117, 116
_ANY_FIXED_WIDTH = {_ANY_FLOAT32: 4, _ANY_FLOAT64: 8, _ANY_BIGINT64: 8}
_ANY_NO_PAYLOAD = frozenset({_ANY_UNDEFINED, _ANY_NULL, _ANY_FALSE, _ANY_TRUE})


def validate_state_vector(state_vector: bytes) -> None:
    """Prove ``state_vector`` is a well-formed Yjs state vector (count, then client/clock pairs).

    pycrdt's ``Doc.get_update`` accepts clocks beyond u32 and client ids beyond 2**53 silently and
    answers with the wrong diff, so a SyncStep1 is checked before it reaches the room's doc.
    """
    reader = _Reader(bytes(state_vector))
    count = reader.read_count("state vector entry count", _MIN_STATE_VECTOR_ENTRY_BYTES)
    for _ in range(count):
        reader.read_var_uint("state vector client id", MAX_YJS_CLIENT_ID)
        reader.read_var_uint("state vector clock", MAX_YJS_CLOCK)
    reader.expect_end("the state vector")


def validate_update_structure(update: bytes) -> None:
    """Walk a Yjs v1 update exactly as Yjs' ``readUpdate`` would, without applying it.

    Proves what the stock JS decoder needs (known content and type refs, parseable JSON content,
    valid UTF-8) and what yrs needs to neither crash nor silently diverge (bounded nesting, client
    ids within 2**53, clocks within u32), rejects zero-length structs (they would give two structs
    the same ID) and rejects trailing bytes. Pure Python: safe to run on anything.
    """
    reader = _Reader(bytes(update))
    _read_client_structs(reader)
    _read_delete_set(reader)
    reader.expect_end("the update")


def validate_update(update: bytes) -> None:
    """Prove a Yjs v1 update is well-formed before it is published anywhere.

    Two gates, cheapest first:

    1. :func:`validate_update_structure` -- the strict pure-Python walk. It must run first: it is
       what keeps crafted input (deep nesting, huge counts) away from the Rust decoder.
    2. a guarded ``apply_update`` on a throwaway ``pycrdt.Doc`` -- proves that the exact pycrdt the
       rooms run accepts the update, so nothing that would fail every later room load (a poison
       message in JetStream) gets published. Missing dependencies are fine: yrs keeps such structs
       pending, exactly as the live room will.

    A throwaway doc cannot see failures that depend on the room's existing content, so rooms still
    apply updates through :func:`call_pycrdt`. Raises :class:`ProtocolError`; returns ``None`` when the update is safe to publish.
    """
    update = bytes(update)
    validate_update_structure(update)
    if update == EMPTY_UPDATE:
        return
    call_pycrdt("update", _apply_to_throwaway_doc, update)


def _read_client_structs(reader: _Reader) -> None:
    client_count = reader.read_count("update client count", _MIN_CLIENT_STRUCTS_HEADER_BYTES)
    for _ in range(client_count):
        struct_count = reader.read_count("update struct count", _MIN_STRUCT_BYTES)
        reader.read_var_uint("update client id", MAX_YJS_CLIENT_ID)
        clock = reader.read_var_uint("update start clock", MAX_YJS_CLOCK)
        for _ in range(struct_count):
            clock += _read_struct(reader)
            if clock > MAX_YJS_CLOCK:
                raise ProtocolError(f"update clock {clock} exceeds u32 (yrs would wrap it)")


def _read_struct(reader: _Reader) -> int:
    """Read one GC, Skip or Item struct and return its length in clock units."""
    info = reader.read_uint8("struct info")
    content_ref = info & _BITS5
    if content_ref in (_GC_REF, _SKIP_REF):
        length = reader.read_var_uint("struct length", MAX_YJS_CLOCK)
    else:
        _read_item_header(reader, info)
        length = _read_item_content(reader, content_ref)
    if length == 0:
        raise ProtocolError("zero-length struct (would give two structs the same ID)")
    return length


def _read_item_header(reader: _Reader, info: int) -> None:
    """Read an item's origins and, when neither origin is present, its parent and parent sub."""
    if info & _HAS_ORIGIN:
        _read_id(reader, "origin client id", "origin clock")
    if info & _HAS_RIGHT_ORIGIN:
        _read_id(reader, "right origin client id", "right origin clock")
    if info & (_HAS_ORIGIN | _HAS_RIGHT_ORIGIN):
        return  # Yjs copies parent info from the origin; nothing else is encoded.
    if reader.read_var_uint("parent info") == 1:
        reader.read_var_string("root type name")
    else:
        _read_id(reader, "parent client id", "parent clock")
    if info & _HAS_PARENT_SUB:
        reader.read_var_string("parent sub")


def _read_id(reader: _Reader, client_what: str, clock_what: str) -> None:
    """Read a struct ID (client, clock); the labels are constants to keep the hot path cheap."""
    reader.read_var_uint(client_what, MAX_YJS_CLIENT_ID)
    reader.read_var_uint(clock_what, MAX_YJS_CLOCK)


def _read_item_content(reader: _Reader, content_ref: int) -> int:
    """Read an item's content (Yjs ``readItemContent``) and return its length in clock units."""
    reader_function = _CONTENT_READERS.get(content_ref)
    if reader_function is None:
        raise ProtocolError(f"unknown item content ref {content_ref}")
    return reader_function(reader)


def _read_deleted_content(reader: _Reader) -> int:
    return reader.read_var_uint("deleted content length", MAX_YJS_CLOCK)


def _read_json_content(reader: _Reader) -> int:
    count = reader.read_count("JSON content count", _MIN_VAR_STRING_BYTES)
    for _ in range(count):
        text = reader.read_var_string("JSON content")
        if text != "undefined":  # Yjs writes the JS value undefined as this bare word
            _parse_json(text, "JSON content")
    return count


def _read_binary_content(reader: _Reader) -> int:
    reader.read_var_bytes("binary content")
    return 1


def _read_string_content(reader: _Reader) -> int:
    text = reader.read_var_string("string content")
    return _utf16_length(text)


def _read_embed_content(reader: _Reader) -> int:
    _parse_json(reader.read_var_string("embed content"), "embed content")
    return 1


def _read_format_content(reader: _Reader) -> int:
    reader.read_var_string("format key")
    _parse_json(reader.read_var_string("format value"), "format value")
    return 1


def _read_type_content(reader: _Reader) -> int:
    type_ref = reader.read_var_uint("shared type ref")
    if type_ref > _MAX_TYPE_REF:
        raise ProtocolError(f"unknown shared type ref {type_ref}")
    if type_ref in (_XML_ELEMENT_TYPE_REF, _XML_HOOK_TYPE_REF):
        reader.read_var_string("XML node name")
    return 1


def _read_any_content(reader: _Reader) -> int:
    count = reader.read_count("any content count", _MIN_ANY_BYTES)
    for _ in range(count):
        _skip_any(reader, depth=1)
    return count


def _read_doc_content(reader: _Reader) -> int:
    reader.read_var_string("subdocument guid")
    _skip_any(reader, depth=1)
    return 1


_CONTENT_READERS: dict[int, Callable[[_Reader], int]] = {
    _DELETED_REF: _read_deleted_content,
    _JSON_REF: _read_json_content,
    _BINARY_REF: _read_binary_content,
    _STRING_REF: _read_string_content,
    _EMBED_REF: _read_embed_content,
    _FORMAT_REF: _read_format_content,
    _TYPE_REF: _read_type_content,
    _ANY_REF: _read_any_content,
    _DOC_REF: _read_doc_content,
}


def _skip_any(reader: _Reader, depth: int) -> None:
    """Skip one lib0 ``Any`` value, bounding recursion by :data:`MAX_NESTING_DEPTH`."""
    if depth > MAX_NESTING_DEPTH:
        raise ProtocolError(f"value nested deeper than {MAX_NESTING_DEPTH} levels")
    tag = reader.read_uint8("any value tag")
    if tag in _ANY_NO_PAYLOAD:
        return
    if tag in _ANY_FIXED_WIDTH:
        reader.read_bytes(_ANY_FIXED_WIDTH[tag], "fixed-width number")
    elif tag == _ANY_VAR_INT:
        reader.read_var_int("integer value")
    elif tag == _ANY_STRING:
        reader.read_var_string("string value")
    elif tag == _ANY_BYTES:
        reader.read_var_bytes("binary value")
    elif tag == _ANY_ARRAY:
        for _ in range(reader.read_count("array length", _MIN_ANY_BYTES)):
            _skip_any(reader, depth + 1)
    elif tag == _ANY_OBJECT:
        for _ in range(reader.read_count("object size", _MIN_VAR_STRING_BYTES + _MIN_ANY_BYTES)):
            reader.read_var_string("object key")
            _skip_any(reader, depth + 1)
    else:
        raise ProtocolError(f"unknown any value tag {tag}")


def _read_delete_set(reader: _Reader) -> None:
    client_count = reader.read_count("delete set client count", _MIN_DELETE_SET_CLIENT_BYTES)
    for _ in range(client_count):
        reader.read_var_uint("delete set client id", MAX_YJS_CLIENT_ID)
        range_count = reader.read_count("delete range count", _MIN_DELETE_RANGE_BYTES)
        for _ in range(range_count):
            clock = reader.read_var_uint("delete range clock", MAX_YJS_CLOCK)
            length = reader.read_var_uint("delete range length", MAX_YJS_CLOCK)
            if clock + length > MAX_YJS_CLOCK:
                raise ProtocolError("delete range ends beyond u32 (yrs would wrap it)")


def _utf16_length(text: str) -> int:
    """Length in UTF-16 code units: Yjs counts string clocks the way JS ``String.length`` does."""
    if text.isascii():
        return len(text)
    return len(text.encode("utf-16-le")) // 2


def _reject_json_constant(name: str) -> Any:
    raise ProtocolError(f"JSON constant {name} is not valid JSON")


def _parse_json(text: str, what: str) -> Any:
    """Parse JSON as strictly as JS ``JSON.parse`` (no NaN/Infinity), with bounded depth."""
    try:
        value = json.loads(text, parse_constant=_reject_json_constant)
    except ProtocolError:
        raise
    except (ValueError, RecursionError) as err:
        raise ProtocolError(f"{what} is not valid JSON: {err}") from err
    _check_json_depth(value, what)
    return value


def _check_json_depth(value: Any, what: str) -> None:
    """Iteratively bound nesting; yrs rejects JSON deeper than serde_json's 128 anyway."""
    pending: list[tuple[Any, int]] = [(value, 1)]
    while pending:
        current, depth = pending.pop()
        if depth > MAX_NESTING_DEPTH:
            raise ProtocolError(f"{what} nested deeper than {MAX_NESTING_DEPTH} levels")
        if isinstance(current, dict):
            pending.extend((child, depth + 1) for child in current.values())
        elif isinstance(current, list):
            pending.extend((child, depth + 1) for child in current)


# --------------------------------------------------------------------------------------------------
# Awareness payloads
# --------------------------------------------------------------------------------------------------


def decode_awareness(payload: bytes) -> list[AwarenessEntry]:
    """Decode a y-protocols awareness update (count, then client id, clock, JSON state each).

    A state must be a JSON object or ``null`` (the client left); anything else, a state above
    :data:`MAX_AWARENESS_STATE_BYTES`, or a count the bytes cannot hold is a :class:`ProtocolError`.
    """
    reader = _Reader(bytes(payload))
    count = reader.read_count("awareness entry count", _MIN_AWARENESS_ENTRY_BYTES)
    entries = [_read_awareness_entry(reader) for _ in range(count)]
    reader.expect_end("the awareness update")
    return entries


def _read_awareness_entry(reader: _Reader) -> AwarenessEntry:
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
    state = _parse_json(text, "awareness state")
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
        parts.append(_write_var_bytes(state_json))
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


# --------------------------------------------------------------------------------------------------
# Frames
# --------------------------------------------------------------------------------------------------


def encode_sync_step1(state_vector: bytes) -> bytes:
    """Frame a state vector as SyncStep1 (what the server sends first on every connection)."""
    return _encode_sync(YSyncMessageType.SYNC_STEP1, state_vector)


def encode_sync_step2(update: bytes) -> bytes:
    """Frame the answer to a SyncStep1; the stock provider marks itself synced on receiving it."""
    return _encode_sync(YSyncMessageType.SYNC_STEP2, update)


def encode_update(update: bytes) -> bytes:
    """Frame an incremental update for broadcast."""
    return _encode_sync(YSyncMessageType.SYNC_UPDATE, update)


def _encode_sync(sync_type: YSyncMessageType, payload: bytes) -> bytes:
    return bytes((MessageType.SYNC, sync_type)) + _write_var_bytes(bytes(payload))


def encode_awareness(payload: bytes) -> bytes:
    """Frame an already-encoded awareness update (e.g. one relayed from NATS)."""
    return bytes((MessageType.AWARENESS,)) + _write_var_bytes(bytes(payload))


def encode_query_awareness() -> bytes:
    """Frame a request for every awareness state the peer knows."""
    return bytes((MessageType.QUERY_AWARENESS,))


def encode_permission_denied(reason: str) -> bytes:
    """Frame y-protocols ``writePermissionDenied`` (e.g. a viewer's update was dropped)."""
    return bytes((MessageType.AUTH, AuthMessageType.PERMISSION_DENIED)) + _write_var_string(reason)


def encode_message(message: Message) -> bytes:
    """Encode any typed message; ``decode_message(encode_message(m)) == m`` for valid messages."""
    match message:
        case SyncStep1(state_vector=state_vector):
            return encode_sync_step1(state_vector)
        case SyncStep2(update=update):
            return encode_sync_step2(update)
        case SyncUpdate(update=update):
            return encode_update(update)
        case AwarenessMessage(payload=payload):
            return encode_awareness(payload)
        case QueryAwareness():
            return encode_query_awareness()
        case AuthMessage(reason=reason):
            return encode_permission_denied(reason)
    raise TypeError(f"not a protocol message: {message!r}")


def decode_message(frame: bytes) -> Message:
    """Decode one binary WebSocket frame into a typed, fully validated message.

    Sync payloads are validated too (state vectors by :func:`validate_state_vector`, updates by
    :func:`validate_update`), so a caller may publish a returned update without re-checking it.
    Raises :class:`ProtocolError` for anything else, never another exception.
    """
    frame = bytes(frame)
    if not frame:
        raise ProtocolError("empty frame")
    reader = _Reader(frame)
    message_type = reader.read_var_uint("message type")
    decoder = _FRAME_DECODERS.get(message_type)
    if decoder is None:
        raise ProtocolError(f"unknown message type {message_type}")
    message = decoder(reader)
    reader.expect_end(type(message).__name__)
    return message


def _decode_sync(reader: _Reader) -> SyncStep1 | SyncStep2 | SyncUpdate:
    sync_type = reader.read_var_uint("sync message type")
    payload = reader.read_var_bytes("sync payload")
    if sync_type == YSyncMessageType.SYNC_STEP1:
        validate_state_vector(payload)
        return SyncStep1(state_vector=payload)
    if sync_type == YSyncMessageType.SYNC_STEP2:
        validate_update(payload)
        return SyncStep2(update=payload)
    if sync_type == YSyncMessageType.SYNC_UPDATE:
        validate_update(payload)
        return SyncUpdate(update=payload)
    raise ProtocolError(f"unknown sync message type {sync_type}")


def _decode_awareness_frame(reader: _Reader) -> AwarenessMessage:
    payload = reader.read_var_bytes("awareness payload")
    return AwarenessMessage(payload=payload, entries=tuple(decode_awareness(payload)))


def _decode_query_awareness(_reader: _Reader) -> QueryAwareness:
    return QueryAwareness()


def _decode_auth(reader: _Reader) -> AuthMessage:
    auth_type = reader.read_var_uint("auth message type")
    if auth_type != AuthMessageType.PERMISSION_DENIED:
        raise ProtocolError(f"unknown auth message type {auth_type}")
    return AuthMessage(reason=reader.read_var_string("permission denied reason"))


_FRAME_DECODERS: dict[int, Callable[[_Reader], Message]] = {
    MessageType.SYNC: _decode_sync,
    MessageType.AWARENESS: _decode_awareness_frame,
    MessageType.AUTH: _decode_auth,
    MessageType.QUERY_AWARENESS: _decode_query_awareness,
}
