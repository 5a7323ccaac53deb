"""Small facts about Yjs v1 updates that pycrdt does not expose.

The rooms keep a document as Yjs *updates* (merged, or re-encoded only when that provably loses
nothing: core/compaction.py), never as a live pycrdt `Doc` (see live/merged_doc.py for why), so
these read updates directly. Inputs were produced or validated by yrs/our codec already.
"""

from __future__ import annotations

from pycrdt import Decoder

StateVector = dict[int, int]
#: client -> sorted, non-overlapping (start, end) clock ranges
DeleteSet = dict[int, list[tuple[int, int]]]


def decode_delete_set(decoder: Decoder) -> DeleteSet:
    """The delete set at the decoder's position (`count, (client, ranges, (clock, len)*)*`), with
    each client's ranges sorted and overlapping or touching ones joined."""
    deleted: DeleteSet = {}
    for _ in range(decoder.read_var_uint()):
        client = decoder.read_var_uint()
        ranges = deleted.setdefault(client, [])
        for _ in range(decoder.read_var_uint()):
            clock = decoder.read_var_uint()
            length = decoder.read_var_uint()
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
    decoder = Decoder(encoded)
    return {
        decoder.read_var_uint(): decoder.read_var_uint() for _ in range(decoder.read_var_uint())
    }


def single_client(update: bytes) -> int | None:
    """The Yjs client id of an update whose structs all come from one client (one transaction,
    the common case); None for several clients or a deletion-only update."""
    decoder = Decoder(update)
    try:  # client count, then the first client's struct count and id
        if decoder.read_var_uint() != 1:
            return None
        decoder.read_var_uint()
        return decoder.read_var_uint()
    except (RuntimeError, IndexError):  # ended early
        return None
