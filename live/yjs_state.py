"""Small facts about Yjs v1 updates that pycrdt does not expose.

The rooms keep a document as merged *updates*, never as a pycrdt `Doc` (see live/room.py for
why), so these read updates directly. Inputs were produced or validated by yrs/our codec already.
"""

from __future__ import annotations

StateVector = dict[int, int]


def _var_uints(data: bytes, count: int) -> list[int]:
    """The first `count` lib0 varuints of `data` (fewer if it ends early)."""
    values: list[int] = []
    value = shift = 0
    for byte in data:
        value |= (byte & 0x7F) << shift
        shift += 7
        if byte < 0x80:
            values.append(value)
            if len(values) == count:
                break
            value = shift = 0
    return values


def decode_state_vector(encoded: bytes) -> StateVector:
    """Decode `count, (client, clock)*` (as written by yrs' `get_state`)."""
    head = _var_uints(encoded, 1)
    count = head[0] if head else 0
    values = _var_uints(encoded, 1 + 2 * count)[1:]
    return dict(zip(values[0::2], values[1::2], strict=True))


def single_client(update: bytes) -> int | None:
    """The Yjs client id of an update whose structs all come from one client (one transaction,
    the common case); None for several clients or a deletion-only update."""
    header = _var_uints(update, 3)  # client count, then the first client's struct count and id
    if len(header) == 3 and header[0] == 1:
        return header[2]
    return None
