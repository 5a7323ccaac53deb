"""Small facts about Yjs v1 updates that pycrdt does not expose.

The rooms keep a document as Yjs *updates* (merged, or re-encoded only when that provably loses
nothing: core/compaction.py), never as a live pycrdt `Doc` (see live/merged_doc.py for why), so
these read updates directly. Inputs were produced or validated by yrs/our codec already.
"""

from __future__ import annotations

from pycrdt import Decoder

StateVector = dict[int, int]


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
