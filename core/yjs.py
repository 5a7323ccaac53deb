"""Yjs updates as bytes, guarded: what every layer that calls pycrdt needs, written once.

* `call_pycrdt` -- pycrdt raises ValueError (and friends) on bad input, and pyo3 turns a Rust panic
  into ``PanicException``, a ``BaseException`` that ``except Exception`` does not stop (it has
  escaped such handlers in systems like ours, DESIGN.md §7). Every call with bytes that came from
  outside goes through this guard, which turns all of it into :class:`ProtocolError` and lets only
  the exceptions that mean "stop this task or process" through.
* `merge` merges updates without a Doc (pending structs are kept, which a pycrdt ``Doc``'s
  ``get_update()`` would drop); `merge_skipping` -- merging a run of log entries must not fail because one of them is poison
  (published past the app's validation, RELIABILITY S3): the run is merged at once (the common
  case), and only if pycrdt refuses it are the entries folded one by one, leaving out (and
  reporting) each one it refuses.

Updates are Yjs v1 updates.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

import pycrdt

#: A Yjs v1 update carrying nothing: zero client structs, empty delete set. Clients send it on
#: every connect, so it skips the pycrdt round trip.
EMPTY_UPDATE = b"\x00\x00"

_T = TypeVar("_T")


class ProtocolError(ValueError):
    """A frame, update, state vector or awareness payload is malformed.

    The one exception the codec (live/protocol) and this guard raise for bad input; callers answer
    the sender with an error (or a 44xx close) and keep the document and its peers untouched.
    """


def call_pycrdt(what: str, function: Callable[..., _T], *args: Any) -> _T:
    """Call into pycrdt, turning anything it raises on bad input into :class:`ProtocolError`."""
    try:
        return function(*args)
    except (KeyboardInterrupt, SystemExit, asyncio.CancelledError):
        raise
    except BaseException as err:  # PanicException is a BaseException: see the module docstring
        raise ProtocolError(f"{what} rejected by pycrdt: {type(err).__name__}: {err}") from err


def merge(updates: Sequence[bytes]) -> bytes:
    """`updates` merged into one Yjs v1 update (empty ones skipped); raises ProtocolError."""
    present = [u for u in updates if u and u != EMPTY_UPDATE]
    if not present:
        return EMPTY_UPDATE
    if len(present) == 1:
        return present[0]
    return call_pycrdt("merge", pycrdt.merge_updates, *present)


def merge_skipping(
    updates: Sequence[bytes], on_skip: Callable[[int, ProtocolError], None]
) -> bytes:
    """`updates` merged into one; if pycrdt refuses the whole run, folded in order one at a time,
    each update it refuses left out and reported as `on_skip(its index, the error)`. The first
    non-empty update is the base (a state that was merged before) and is never skipped."""
    try:
        return merge(updates)
    except ProtocolError:
        pass
    present = [(index, u) for index, u in enumerate(updates) if u and u != EMPTY_UPDATE]
    merged = present[0][1]
    for index, update in present[1:]:
        try:
            merged = call_pycrdt("merge", pycrdt.merge_updates, merged, update)
        except ProtocolError as err:
            on_skip(index, err)
    return merged
