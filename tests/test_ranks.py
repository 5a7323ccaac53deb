"""Position keys (core/ranks.py): known vectors and properties (hypothesis)."""

from __future__ import annotations

import itertools

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from core import ranks
from core.ranks import DIGITS, MAX_KEY_LENGTH, RankError, key_between, spread

# Vectors of the reference implementation (rocicorp/fractional-indexing), so keys written by a
# client library that follows it interleave correctly with ours.
VECTORS = [
    (None, None, "a0"),
    (None, "a0", "Zz"),
    (None, "Zz", "Zy"),
    ("a0", None, "a1"),
    ("a1", None, "a2"),
    ("a0", "a1", "a0V"),
    ("a1", "a2", "a1V"),
    ("a0V", "a1", "a0l"),
    ("Zz", "a0", "ZzV"),
    ("Zz", "a1", "a0"),
    (None, "Y00", "Xzzz"),
    ("bzz", None, "c000"),
    ("a0", "a0V", "a0G"),
    ("a0", "a0G", "a08"),
    ("b125", "b129", "b127"),
    ("a0", "a1V", "a1"),
    ("Zz", "a01", "a0"),
    (None, "a0V", "a0"),
    (None, "b999", "b99"),
    (None, "A000000000000000000000000001", "A000000000000000000000000000V"),
    ("zzzzzzzzzzzzzzzzzzzzzzzzzzy", None, "zzzzzzzzzzzzzzzzzzzzzzzzzzz"),
    ("zzzzzzzzzzzzzzzzzzzzzzzzzzz", None, "zzzzzzzzzzzzzzzzzzzzzzzzzzzV"),
]


@pytest.mark.parametrize(("low", "high", "expected"), VECTORS)
def test_reference_vectors(low, high, expected):
    assert key_between(low, high) == expected


@pytest.mark.parametrize(
    ("low", "high"),
    [
        (None, "A00000000000000000000000000"),
        ("a00", None),
        ("a00", "a1"),
        ("0", "1"),
        ("a1", "a0"),
        ("a1", "a1"),
        ("", None),
        ("a0 ", None),
        ("b1", None),
    ],
)
def test_invalid_input_raises(low, high):
    with pytest.raises(RankError):
        key_between(low, high)


_INTEGER_HEADS = "abcdefgTUVWXYZ"


@st.composite
def valid_keys(draw: st.DrawFn) -> str:
    head = draw(st.sampled_from(_INTEGER_HEADS))
    width = ranks._integer_length(head) - 1
    integer = draw(st.text(alphabet=DIGITS, min_size=width, max_size=width))
    fraction = draw(st.text(alphabet=DIGITS, max_size=12)).rstrip("0")
    return head + integer + fraction


@given(valid_keys(), valid_keys())
def test_key_strictly_between_neighbours(a, b):
    if a == b:
        return
    low, high = sorted((a, b))
    key = key_between(low, high)
    assert low < key < high
    assert ranks.is_valid(key)


@given(valid_keys())
def test_open_ends(key):
    assert key_between(key, None) > key
    assert key_between(None, key) < key


@given(st.integers(min_value=0, max_value=3000))
def test_spread_is_even_short_and_ordered(count):
    keys = spread(count)
    assert len(keys) == count
    assert keys == sorted(keys)
    assert len(set(keys)) == count
    assert all(ranks.is_valid(k) for k in keys)
    assert len({len(k) for k in keys}) <= 1
    # log62 of the slots needed, plus the head letter: 3 characters up to ~60 items, 4 up to ~3800.
    if keys:
        assert len(keys[0]) <= 4
        values = [_decode(k) for k in keys]
        steps = {b - a for a, b in itertools.pairwise(values)}
        assert len(steps) <= 1
        assert min([values[0], *steps]) >= ranks.MIN_SPREAD_GAP


def _decode(key: str) -> int:
    value = 0
    for digit in key[1:]:
        value = value * len(DIGITS) + DIGITS.index(digit)
    return value


def _insert(keys: list[str], index: int) -> list[str]:
    """Insert a key at `index` the way the service does: rebalance first if it would be too long."""
    low = keys[index - 1] if index > 0 else None
    high = keys[index] if index < len(keys) else None
    key = key_between(low, high)
    if ranks.needs_rebalance(key):
        keys = spread(len(keys))
        low = keys[index - 1] if index > 0 else None
        high = keys[index] if index < len(keys) else None
        key = key_between(low, high)
    assert not ranks.needs_rebalance(key)
    return [*keys[:index], key, *keys[index:]]


@settings(max_examples=60, deadline=None)
@given(st.lists(st.floats(min_value=0, max_value=1), min_size=1, max_size=400))
def test_random_inserts_stay_ordered_unique_and_bounded(fractions):
    keys: list[str] = []
    for fraction in fractions:
        keys = _insert(keys, round(fraction * len(keys)))
        assert keys == sorted(keys)
        assert len(set(keys)) == len(keys)
        assert max(map(len, keys)) <= MAX_KEY_LENGTH


@pytest.mark.parametrize("where", ["front", "same_gap", "before_last"])
def test_adversarial_inserts_trigger_rebalance_not_overflow(where):
    keys = ["a0", "a1"]
    rebalanced = 0
    for _ in range(2000):
        index = {"front": 0, "same_gap": 1, "before_last": len(keys) - 1}[where]
        before = keys
        keys = _insert(keys, index)
        if where == "same_gap" and len(keys[1]) < len(before[1]):
            rebalanced += 1
        assert max(map(len, keys)) <= MAX_KEY_LENGTH
    assert keys == sorted(keys)
    if where == "same_gap":
        assert rebalanced > 0


def test_appends_grow_logarithmically():
    key = None
    for _ in range(10_000):
        key = key_between(key, None)
    assert len(key) <= 4
