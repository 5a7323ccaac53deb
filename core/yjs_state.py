"""Small facts about Yjs v1 updates that pycrdt does not expose.

The rooms keep a document as Yjs *updates* (merged, or re-encoded only when that provably loses
nothing: core/compaction.py), never as a live pycrdt `Doc` (see live/merged_doc.py for why), so
these read updates directly. Inputs were produced or validated by yrs/our codec already.
"""

from __future__ import annotations

StateVector = dict[int, int]
#: client -> sorted, non-overlapping (start, end) clock ranges
DeleteSet = dict[int, list[tuple[int, int]]]


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


def read_var_uint(data: bytes, offset: int) -> tuple[int, int]:
    """The lib0 varuint at `offset` and the offset after it (IndexError if `data` ends first)."""
    value = shift = 0
    while True:
        byte = data[offset]
        offset += 1
        value |= (byte & 0x7F) << shift
        shift += 7
        if byte < 0x80:
            return value, offset


def encode_var_uint(value: int) -> bytes:
    """`value` as a lib0 varuint."""
    out = bytearray()
    while value >= 0x80:
        out.append(0x80 | (value & 0x7F))
        value >>= 7
    out.append(value)
    return bytes(out)


def decode_delete_set(data: bytes, offset: int) -> DeleteSet:
    """The delete set starting at `offset` (`count, (client, ranges, (clock, len)*)*`), with each
    client's ranges sorted and overlapping or touching ones joined."""
    deleted: DeleteSet = {}
    clients, offset = read_var_uint(data, offset)
    for _ in range(clients):
        client, offset = read_var_uint(data, offset)
        count, offset = read_var_uint(data, offset)
        ranges = deleted.setdefault(client, [])
        for _ in range(count):
            clock, offset = read_var_uint(data, offset)
            length, offset = read_var_uint(data, offset)
            if length:
                ranges.append((clock, clock + length))
    return {client: _joined(ranges) for client, ranges in deleted.items() if ranges}


def _joined(ranges: list[tuple[int, int]]) -> list[tuple[int, int]]:
    ranges.sort()
    out = [ranges[0]]
    for start, end in ranges[1:]:
        last_start, last_end = out[-1]
        if start <= last_end:
            out[-1] = (last_start, max(last_end, end))
        else:
            out.append((start, end))
    return out


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
