"""The input boundary: what no request value may carry, decided once for every endpoint.

Postgres text cannot hold a NUL character and UTF-8 cannot encode a lone surrogate (JSON's
`"\\ud800"` escape makes one); Python's JSON parser recurses once per nesting level, turns
4,300+ digit integers into a `ValueError` and accepts `NaN`/`Infinity` (not JSON). Each of these
used to surface as a 500 from deep inside a service or the driver. Here they are a 400
`validation_error` naming the field, before any schema, service or database sees the value
(RELIABILITY S22). Pure functions over bytes and str: no Tornado, testable alone.
"""

from __future__ import annotations

import json
import re
from typing import Any

import tornado.web

from core.errors import ValidationFailed

# Nesting a real body needs (BlockNote block trees: two levels per block) with room to spare;
# far below the interpreter's recursion limit so parsing and schema loading never hit it.
MAX_JSON_DEPTH = 64
# Every integer the API takes fits Postgres bigint; larger ones cannot name or count anything.
MAX_JSON_INT = 2**63 - 1
# The largest resume point a socket query accepts: stream sequences are uint64 in JetStream and
# bigint in Postgres; beyond this a `since` can only be a mistake (refused with 4400).
MAX_STREAM_SEQ = 2**63 - 1
_INT_DIGITS = len(str(MAX_JSON_INT))
_UNSTORABLE = re.compile("[\x00\ud800-\udfff]")
IDEMPOTENCY_HEADER = "Idempotency-Key"
MAX_IDEMPOTENCY_KEY_CHARS = 128  # room for a UUID or a client's own composite key
_IDEMPOTENCY_KEY = re.compile(r"[\x20-\x7e]+")  # printable ASCII: what a header carries intact
_BODY = "_body"  # the field name for a problem that is not inside any field


class _Rejected:
    """Placeholder the parser hooks leave where a number may not stand (reported with its path)."""

    def __init__(self, reason: str) -> None:
        self.reason = reason


def text_problem(value: str) -> str | None:
    """Why a string cannot be taken as text, or None."""
    found = _UNSTORABLE.search(value)
    if found is None:
        return None
    return "contains a NUL character" if found.group() == "\x00" else "contains a lone surrogate"


def check_text(name: str, value: str) -> str:
    """`value` if storable, else a 400 naming `name` (query and path parameters, headers)."""
    problem = text_problem(value)
    if problem is not None:
        raise ValidationFailed(f"{safe_name(name)} {problem}", fields={safe_name(name): [problem]})
    return value


def check_idempotency_key(value: str) -> str:
    """A client's retry key: 1-128 printable ASCII characters, else a 400 naming the header."""
    if len(value) > MAX_IDEMPOTENCY_KEY_CHARS:
        reason = f"longer than {MAX_IDEMPOTENCY_KEY_CHARS} characters"
    elif not _IDEMPOTENCY_KEY.fullmatch(value):
        reason = "must be printable ASCII (no control characters)"
    else:
        return value
    raise ValidationFailed(f"{IDEMPOTENCY_HEADER} {reason}", fields={IDEMPOTENCY_HEADER: [reason]})


def attempt_key(handler: tornado.web.RequestHandler) -> str:
    """The client's retry key for a server-side write (restore, block edits): Idempotency-Key, or
    the request id without one. A malformed key is a 400: ignoring it would let a retry apply the
    write again, undoing edits made in between."""
    key = handler.request.headers.get(IDEMPOTENCY_HEADER)
    request_id: str = getattr(handler, "request_id", "")
    return request_id if key is None else check_idempotency_key(key)


def safe_name(name: str) -> str:
    """A field name fit to echo in an error body (a bad key is shown escaped)."""
    return name if text_problem(name) is None else ascii(name)[1:-1]


def parse_json(body: bytes) -> Any:
    """Decode a request body: strict UTF-8 JSON with bounded depth, integers and text."""
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as err:
        raise _body_error(f"body is not UTF-8 (byte {err.start})") from err
    try:
        data = json.loads(
            text, parse_int=_parse_int, parse_float=_parse_float, parse_constant=_reject_constant
        )
    except RecursionError as err:
        raise _too_deep(_deep_member(text)) from err
    except json.JSONDecodeError as err:
        raise ValidationFailed(
            f"malformed JSON body: {err}", fields={_BODY: [f"malformed JSON: {err.msg}"]}
        ) from err
    problem = _first_problem(data, ())
    if problem is not None:
        path, reason = problem
        raise ValidationFailed(f"{_dotted(path)}: {reason}", fields=_nest(path, reason))
    return data


def _parse_int(literal: str) -> int | _Rejected:
    if len(literal.lstrip("-")) > _INT_DIGITS or abs(int(literal)) > MAX_JSON_INT:
        return _Rejected(f"integer out of range (at most {_INT_DIGITS} digits, 64-bit)")
    return int(literal)


def _parse_float(literal: str) -> float | _Rejected:
    value = float(literal)
    if value in (float("inf"), float("-inf")):
        return _Rejected("number out of range")
    return value


def _reject_constant(name: str) -> _Rejected:
    return _Rejected(f"{name} is not a JSON number")


def _first_problem(value: Any, path: tuple[str | int, ...]) -> tuple[tuple, str] | None:
    """Depth-first: the path to the first value the API cannot take, and why."""
    if len(path) > MAX_JSON_DEPTH:
        return path, f"nested deeper than {MAX_JSON_DEPTH} levels"
    if isinstance(value, _Rejected):
        return path, value.reason
    if isinstance(value, str):
        reason = text_problem(value)
        return None if reason is None else (path, reason)
    if isinstance(value, dict):
        for key, item in value.items():
            key_problem = text_problem(key)
            if key_problem is not None:
                return (*path, safe_name(key)), f"field name {key_problem}"
            found = _first_problem(item, (*path, key))
            if found is not None:
                return found
    if isinstance(value, list):
        for index, item in enumerate(value):
            found = _first_problem(item, (*path, index))
            if found is not None:
                return found
    return None


def _deep_member(text: str) -> str | None:
    """The top-level member whose value is too deep to parse (the parser only says "too deep"):
    parse the top-level object one member at a time, each value at C speed."""
    decoder = json.JSONDecoder()
    skip = json.decoder.WHITESPACE.match  # type: ignore[attr-defined]
    index = skip(text, 0).end()
    if text[index : index + 1] != "{":
        return None
    index += 1
    while True:
        index = skip(text, index).end()
        if text[index : index + 1] != '"':
            return None
        key, index = json.decoder.scanstring(text, index + 1)  # type: ignore[attr-defined]
        index = skip(text, index).end()
        if text[index : index + 1] != ":":
            return None
        index = skip(text, index + 1).end()
        try:
            _, index = decoder.raw_decode(text, index)
        except RecursionError:
            return safe_name(key)
        except ValueError:
            return None
        index = skip(text, index).end()
        if text[index : index + 1] != ",":
            return None
        index += 1


def _too_deep(member: str | None) -> ValidationFailed:
    reason = f"nested deeper than {MAX_JSON_DEPTH} levels"
    name = member or _BODY
    return ValidationFailed(f"{name}: {reason}", fields={name: [reason]})


def _body_error(reason: str) -> ValidationFailed:
    return ValidationFailed(reason, fields={_BODY: [reason]})


def _dotted(path: tuple[str | int, ...]) -> str:
    return ".".join(str(part) for part in path) or _BODY


def _nest(path: tuple[str | int, ...], reason: str) -> dict[str, Any]:
    """marshmallow's error shape: `{"a": {"0": {"b": ["reason"]}}}` for the path a[0].b."""
    if not path:
        return {_BODY: [reason]}
    errors: Any = [reason]
    for part in reversed(path):
        errors = {str(part): errors}
    return errors
