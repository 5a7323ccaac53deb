"""A document state's fingerprint: what `collab verify` compares between a node's live room and
the state rebuilt from Postgres snapshot + JetStream log.

Two merged Yjs updates with the same content can differ byte for byte (merge order), so the
fingerprint is the state vector (decoded, so client order does not matter) plus a hash of the
document's JSON content (`services.doc_content.to_json`, every root). Small enough for one NATS
message whatever the document's size.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass
from typing import Any

from core.yjs_state import decode_state_vector
from services.doc_content import state_vector, to_json


@dataclass(frozen=True)
class Fingerprint:
    seq: int
    state_vector: dict[str, int]
    content_sha256: str

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, raw: dict[str, Any]) -> Fingerprint:
        return cls(int(raw["seq"]), dict(raw["state_vector"]), str(raw["content_sha256"]))

    def same_state(self, other: Fingerprint) -> bool:
        return (self.state_vector, self.content_sha256) == (
            other.state_vector,
            other.content_sha256,
        )


def fingerprint(update: bytes, seq: int) -> Fingerprint:
    """Raises `ContentError` (services.ydoc_roots) if the state cannot be read."""
    vector = decode_state_vector(state_vector(update))
    content = json.dumps(to_json(update), sort_keys=True, separators=(",", ":"), default=str)
    return Fingerprint(
        seq,
        {str(client): clock for client, clock in sorted(vector.items())},
        hashlib.sha256(content.encode()).hexdigest(),
    )
