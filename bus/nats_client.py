"""nats-py's client with a cheaper parser for message headers.

Every document update carries four headers (`Nats-Msg-Id`, `Collab-Client`, `Collab-User`,
`Collab-Node`: the subject contract) and nats-py parses them for every message it receives —
the room's ordered consumer gets each update back. nats-py 2.16's parser runs a generator over
every character of every header name (`any(c.isspace() for c in key)`); in a py-spy profile of
the 10 × 10 benchmark it was ~10 % of the server's CPU (issue 15). This parser returns exactly
the same dict for every input (tests/test_nats_client.py compares the two on edge cases): names are
stripped of ASCII whitespace and must be ASCII with no whitespace left inside, values are
stripped and decoded as UTF-8 with replacement.
"""

from __future__ import annotations

import re

from nats.aio.client import Client as _NatsPyClient

_CRLF = b"\r\n"
# What `str.isspace` is true for among ASCII characters (the names are ASCII by then).
_ASCII_SPACE = re.compile(rb"[\t\n\x0b\x0c\r\x1c-\x1f ]")


def parse_header_lines(raw: bytes) -> dict[str, str]:
    """`Name: Value` lines of a NATS header block → dict (the last of a repeated name wins)."""
    out: dict[str, str] = {}
    for line in raw.split(_CRLF):
        name, sep, value = line.partition(b":")
        if not sep:
            continue
        name = name.strip()
        if not name.isascii() or _ASCII_SPACE.search(name) is not None:
            continue
        out[name.decode("ascii")] = value.strip().decode("utf-8", "replace")
    return out


class Client(_NatsPyClient):
    """nats-py's `Client`, parsing headers with `parse_header_lines`."""

    _parse_header_lines = staticmethod(parse_header_lines)
