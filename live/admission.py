"""Caps on the sockets one node holds (RELIABILITY S6/S21, issue 17 item 3).

Three caps, checked when a socket opens, every kind counted together (a user's document and board
sockets share one budget):

* per user -- one account holding thousands of sockets (a script, a leaking client) cannot eat a
  node's file descriptors and memory;
* per client address -- the same for unauthenticated floods of handshakes from one host (behind a
  proxy the address is the proxy's unless `COLLAB_XHEADERS` is on, see the README);
* per document -- fan-out cost grows with the clients of a room; past the cap a joiner is told the
  document is full and retries later (every hosted collaboration service has such a cap).

Counted per node, in memory, not across the cluster: what the caps protect is the node (its fds,
memory and fan-out), the count is exact and costs nothing, and it keeps working when Redis does
not. A user spread over k nodes can hold k x the per-user cap; the cluster-wide bound per address
is the load balancer's (`limit_conn` in ops/deploy/nginx.conf).

Admission is synchronous (no await between the check and the count), so a burst of concurrent
handshakes cannot all pass the check before any of them is counted.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

import structlog

from core.errors import AppError, CloseCode
from server.settings import Settings

log = structlog.get_logger(__name__)


class TooManySockets(AppError):
    """The user or the address holds as many sockets as this node allows: 4429 (the stock
    provider stops reconnecting, which is what this refusal wants)."""

    status = 429
    code = "too_many_sockets"
    ws_close_code = CloseCode.RATE_LIMITED


class DocumentFull(AppError):
    """The document has as many clients on this node as allowed: 1013, the client retries."""

    status = 503
    code = "document_full"
    ws_close_code = CloseCode.TRY_AGAIN_LATER


@dataclass(frozen=True)
class SocketCaps:
    per_user: int
    per_address: int
    per_document: int

    @classmethod
    def from_settings(cls, settings: Settings) -> SocketCaps:
        return cls(
            per_user=settings.ws_max_sockets_per_user,
            per_address=settings.ws_max_sockets_per_ip,
            per_document=settings.ws_max_clients_per_document,
        )


class Seat:
    """One admitted socket; `release()` when it closes (idempotent)."""

    def __init__(self, admission: Admission, user_id: str, address: str, room: str | None):
        self._admission = admission
        self.user_id = user_id
        self.address = address
        self.room = room
        self._released = False

    def release(self) -> None:
        if not self._released:
            self._released = True
            self._admission.release(self)


class Admission:
    """The open sockets of this node by user, by client address and by document."""

    def __init__(self, caps: SocketCaps) -> None:
        self.caps = caps
        self._users: Counter[str] = Counter()
        self._addresses: Counter[str] = Counter()
        self._rooms: Counter[str] = Counter()

    def admit(self, user_id: str, address: str, room: str | None) -> Seat:
        """Count a new socket, or raise the refusal (with a reason a person can act on)."""
        caps = self.caps
        if self._users[user_id] >= caps.per_user:
            raise TooManySockets(
                f"too many open sockets for this user ({caps.per_user} per server):"
                " close other tabs or connections"
            )
        if self._addresses[address] >= caps.per_address:
            log.warning("ws.address_cap_reached", address=address, cap=caps.per_address)
            raise TooManySockets(
                f"too many open sockets from this address ({caps.per_address} per server)"
            )
        if room is not None and self._rooms[room] >= caps.per_document:
            raise DocumentFull(
                f"document is full ({caps.per_document} clients on this server): try again later"
            )
        self._users[user_id] += 1
        self._addresses[address] += 1
        if room is not None:
            self._rooms[room] += 1
        return Seat(self, user_id, address, room)

    def release(self, seat: Seat) -> None:
        _decrement(self._users, seat.user_id)
        _decrement(self._addresses, seat.address)
        if seat.room is not None:
            _decrement(self._rooms, seat.room)

    def open_sockets(self, user_id: str) -> int:
        return self._users[user_id]


def _decrement(counter: Counter[str], key: str) -> None:
    """Counts that reach zero are removed, so the maps hold only keys with open sockets."""
    counter[key] -= 1
    if counter[key] <= 0:
        del counter[key]
