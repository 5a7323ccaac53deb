"""Sortable position keys (fractional indexing) so that moving an item writes one row.

A key is an *integer part* followed by an optional *fraction*, all in base 62 with the digits
`0-9A-Za-z`, whose ASCII order is their numeric order; keys therefore sort correctly as plain byte
strings (Postgres columns holding them use `COLLATE "C"`, never a locale collation).

* The integer part starts with a head letter that encodes its length: `a` = 1 digit, `b` = 2 digits
  … `z` = 26 digits; `A`…`Z` are the negative integers, mirrored, so they sort before `a…`. Appending
  at either end increments/decrements the integer, so a list that only grows at the end gets keys of
  length O(log₆₂ n) (`a0`, `a1`, … `az`, `b10`, …) instead of one more character every few appends.
* The fraction is a base-62 fraction without trailing zeros; inserting between two neighbours takes
  the midpoint digit, so repeated inserts into the same gap grow a key by one character about every
  six inserts (log₂ 62 ≈ 5.95). A key longer than `MAX_KEY_LENGTH` is never stored: the caller
  rebalances the whole list (`spread`) instead — that is the only operation that rewrites many rows.

The algorithm is David Greenspan's "Implementing Fractional Indexing" (as in rocicorp's
fractional-indexing and Figma's multiplayer ordering). Pure functions, no I/O: tested with
hypothesis in `tests/test_ranks.py`.
"""

from __future__ import annotations

DIGITS = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
BASE = len(DIGITS)
_INDEX = {digit: value for value, digit in enumerate(DIGITS)}
_ZERO = DIGITS[0]
# The smallest integer part ("A" + 26 zeros) cannot be decremented; keys below it are fractions.
_SMALLEST_INTEGER = "A" + _ZERO * 26

# A stored key is at most this long (the column has a CHECK with the same bound). 48 characters
# leave room for ~230 inserts into one gap before a rebalance, while an index entry stays small.
MAX_KEY_LENGTH = 48
# `spread` leaves at least this many free integers between neighbours, so the first inserts after a
# rebalance stay in the integer part (keys do not grow at all until a gap is used up).
MIN_SPREAD_GAP = 62


class RankError(ValueError):
    """A malformed key, or neighbours given in the wrong order (a caller bug or corrupt data)."""


# --- the fraction: midpoint of two base-62 fractions -------------------------------------------


def _midpoint(low: str, high: str | None) -> str:
    """A fraction strictly between `low` and `high` (None = 1.0), both without trailing zeros."""
    if high is not None and low >= high:
        raise RankError(f"{low!r} >= {high!r}")
    if low.endswith(_ZERO) or (high is not None and high.endswith(_ZERO)):
        raise RankError("fraction with a trailing zero")
    if high:
        # Skip the common prefix (low is padded with zeros, which do not change its value).
        n = 0
        while (low[n] if n < len(low) else _ZERO) == high[n]:
            n += 1
        if n > 0:
            return high[:n] + _midpoint(low[n:], high[n:])
    digit_low = _INDEX[low[0]] if low else 0
    digit_high = _INDEX[high[0]] if high is not None else BASE
    if digit_high - digit_low > 1:
        return DIGITS[(digit_low + digit_high + 1) // 2]
    # The first digits are adjacent: keep low's first digit and recurse into the rest.
    if high is not None and len(high) > 1:
        return high[:1]
    return DIGITS[digit_low] + _midpoint(low[1:], None)


# --- the integer part ------------------------------------------------------------------------


def _integer_length(head: str) -> int:
    if "a" <= head <= "z":
        return ord(head) - ord("a") + 2
    if "A" <= head <= "Z":
        return ord("Z") - ord(head) + 2
    raise RankError(f"invalid key head {head!r}")


def _split(key: str) -> tuple[str, str]:
    """(integer part, fraction) of a valid key; raises `RankError` otherwise."""
    if not key:
        raise RankError("empty key")
    length = _integer_length(key[0])
    if length > len(key) or any(c not in _INDEX for c in key):
        raise RankError(f"invalid key {key!r}")
    integer, fraction = key[:length], key[length:]
    if fraction.endswith(_ZERO) or key == _SMALLEST_INTEGER:
        raise RankError(f"invalid key {key!r}")
    return integer, fraction


def is_valid(key: str) -> bool:
    try:
        _split(key)
    except RankError:
        return False
    return True


def _increment(integer: str) -> str | None:
    head, digits = integer[0], list(integer[1:])
    for i in range(len(digits) - 1, -1, -1):
        value = _INDEX[digits[i]] + 1
        if value < BASE:
            digits[i] = DIGITS[value]
            return head + "".join(digits)
        digits[i] = _ZERO
    # Carry out of the top digit: the integer gets one digit longer (or changes sign).
    if head == "Z":
        return "a" + _ZERO
    if head == "z":
        return None
    new_head = chr(ord(head) + 1)
    if new_head > "a":
        digits.append(_ZERO)
    else:
        digits.pop()
    return new_head + "".join(digits)


def _decrement(integer: str) -> str | None:
    head, digits = integer[0], list(integer[1:])
    for i in range(len(digits) - 1, -1, -1):
        value = _INDEX[digits[i]] - 1
        if value >= 0:
            digits[i] = DIGITS[value]
            return head + "".join(digits)
        digits[i] = DIGITS[-1]
    if head == "a":
        return "Z" + DIGITS[-1]
    if head == "A":
        return None
    new_head = chr(ord(head) - 1)
    if new_head < "Z":
        digits.append(DIGITS[-1])
    else:
        digits.pop()
    return new_head + "".join(digits)


# --- public API ------------------------------------------------------------------------------


def key_between(low: str | None, high: str | None) -> str:
    """A key strictly between `low` and `high` (None = open end); both None = the first key."""
    if low is not None:
        _split(low)
    if high is not None:
        _split(high)
    if low is not None and high is not None and low >= high:
        raise RankError(f"{low!r} >= {high!r}")
    if low is None:
        return "a" + _ZERO if high is None else _key_before(high)
    if high is None:
        integer, fraction = _split(low)
        bigger = _increment(integer)
        return integer + _midpoint(fraction, None) if bigger is None else bigger
    low_int, low_frac = _split(low)
    high_int, high_frac = _split(high)
    if low_int == high_int:
        return low_int + _midpoint(low_frac, high_frac)
    bigger = _increment(low_int)
    if bigger is None:
        raise RankError("integer part overflow")
    return bigger if bigger < high else low_int + _midpoint(low_frac, None)


def _key_before(high: str) -> str:
    integer, fraction = _split(high)
    if integer == _SMALLEST_INTEGER:
        return integer + _midpoint("", fraction)
    if integer < high:
        # high has a fraction: its bare integer part is smaller and still free.
        return integer
    smaller = _decrement(integer)
    if smaller is None:
        raise RankError("integer part underflow")
    return smaller


def needs_rebalance(key: str) -> bool:
    """True when `key` may not be stored: the caller must `spread` the list and try again."""
    return len(key) > MAX_KEY_LENGTH


def _encode_integer(value: int, width: int) -> str:
    digits = []
    for _ in range(width):
        value, digit = divmod(value, BASE)
        digits.append(DIGITS[digit])
    if value:
        raise RankError("value does not fit the width")
    return chr(ord("a") + width - 1) + "".join(reversed(digits))


def spread(count: int) -> list[str]:
    """`count` evenly spaced keys of one (short) length, in ascending order.

    Used to rebalance a list: the keys are non-negative integers of the smallest width that leaves
    at least `MIN_SPREAD_GAP` free integers between neighbours and at both ends.
    """
    if count < 0:
        raise RankError("count must be >= 0")
    width = 1
    while BASE**width < (count + 1) * MIN_SPREAD_GAP:
        width += 1
    step = BASE**width // (count + 1)
    return [_encode_integer(step * (i + 1), width) for i in range(count)]
