"""lib0 wire primitives of the y-websocket codec: the strict reader, varint/bytes/string writers,
strict JSON, the frame's outer message type and the numeric limits every part checks.

Everything here raises :class:`core.yjs.ProtocolError` on bad input and nothing else.
"""

from __future__ import annotations

import json
import re
from enum import IntEnum
from typing import Any

from pycrdt import write_var_uint

from core.yjs import ProtocolError

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

#: 8 varuint bytes carry 56 bits, enough for any value up to 2**53 - 1. Longer and other
#: non-canonical encodings (a redundant trailing zero byte, like 0x81 0x00 for 1) are never written
#: by lib0 or yrs; lib0 would read them, this codec rejects them so that every message has exactly
#: one encoding (``encode_message(decode_message(frame)) == frame``).
_MAX_VAR_UINT_BYTES = 8
_VAR_UINT_PATTERN = re.compile(rb"[\x80-\xff]{0,%d}[\x00-\x7f]" % (_MAX_VAR_UINT_BYTES - 1))


class MessageType(IntEnum):
    """Outer message type of a y-websocket frame (y-websocket ``messageSync`` ...)."""

    SYNC = 0
    AWARENESS = 1
    AUTH = 2
    QUERY_AWARENESS = 3


class Reader:
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


def write_var_bytes(data: bytes) -> bytes:
    return write_var_uint(len(data)) + data


def write_var_string(text: str) -> bytes:
    # pycrdt's Encoder.write_var_string writes len(text) -- characters, not bytes -- so non-ASCII
    # text would be mis-framed; lib0 prefixes the UTF-8 byte length.
    return write_var_bytes(text.encode("utf-8"))


def _reject_json_constant(name: str) -> Any:
    raise ProtocolError(f"JSON constant {name} is not valid JSON")


def parse_json(text: str, what: str) -> Any:
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
