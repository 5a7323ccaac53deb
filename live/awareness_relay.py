"""One document's awareness across nodes: the local registry and its core-NATS relay.

Awareness (cursors, selections, who is here) is ephemeral and renewed by clients every 15 s, so it
travels on core NATS (`collab.doc.<id>.awareness`), best effort, never through JetStream. Each node
publishes the changes of its own connections, drops its own echoes (`Collab-Node`), and answers a
`query` (sent by a node that just loaded the room) with its local states. The room decides who
gets what locally (`fan_out`); the relay never sees a socket.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable
from typing import Any

import nats.errors
import structlog
from nats.aio.msg import Msg

from bus.connection import NatsConnection
from bus.jetstream import doc_awareness_subject
from live.awareness import AwarenessChange, AwarenessRegistry
from live.protocol import AwarenessEntry, ProtocolError, decode_awareness, encode_awareness_entries
from live.tasks import TaskSet

log = structlog.get_logger(__name__)

HEADER_NODE = "Collab-Node"
HEADER_USER = "Collab-User"
HEADER_KIND = "Collab-Kind"  # "update" (default) or "query": "send me your local states"
KIND_QUERY = "query"

FanOut = Callable[[list[AwarenessChange]], None]


class AwarenessRelay:
    """The awareness of one document on this node, kept in step with the other nodes."""

    def __init__(
        self, doc_id: str, *, node_id: str, nats_conn: NatsConnection, fan_out: FanOut
    ) -> None:
        self.doc_id = doc_id
        self.node_id = node_id
        self.registry = AwarenessRegistry(node_id)
        self._nats = nats_conn
        self._fan_out = fan_out
        self._sub: Any = None
        self._tasks = TaskSet(doc_id)
        self.stopped = False

    async def start(self) -> None:
        """Follow the other nodes' awareness and ask them for their current states."""
        self._sub = await self._nats.nc.subscribe(
            doc_awareness_subject(self.doc_id), cb=self._on_message
        )
        self._publish_raw(b"\x00", user_id="", kind=KIND_QUERY)

    async def stop(self) -> None:
        self.stopped = True
        if self._sub is not None:
            with contextlib.suppress(nats.errors.Error):
                await self._sub.unsubscribe()
        await self._tasks.wait()

    # --- local connections -------------------------------------------------------------------

    def apply_local(
        self, conn_id: str, user_id: str, entries: list[AwarenessEntry], now: float
    ) -> list[AwarenessEntry]:
        """A local connection's awareness update; returns entries to send back to it only."""
        result = self.registry.apply_local(conn_id, user_id, entries, now)
        if result.accepted:
            self._fan_out(result.accepted)
            self._publish(user_id, [c.entry for c in result.accepted])
        return result.nudges

    def release(self, conn_id: str, user_id: str, now: float) -> None:
        """A local connection left: its states are removed here and on the other nodes."""
        removals = self.registry.release(conn_id, now)
        if removals:
            self._fan_out(removals)
            self._publish(user_id, [c.entry for c in removals])

    def expire(self, now: float, timeout_s: float) -> None:
        """y-protocols peers drop states not renewed within the timeout; so does the server."""
        expired = self.registry.expire(now, timeout_s)
        if expired:
            self._fan_out(expired)

    # --- the other nodes ---------------------------------------------------------------------

    def _publish(self, user_id: str, entries: list[AwarenessEntry]) -> None:
        try:
            payload = encode_awareness_entries(entries)
        except ProtocolError as err:
            log.warning("room.awareness_encode_failed", doc_id=self.doc_id, error=str(err))
            return
        self._publish_raw(payload, user_id=user_id, kind="update")

    def _publish_raw(self, payload: bytes, *, user_id: str, kind: str) -> None:
        """Core NATS, best effort: awareness is ephemeral and renewed every 15 s by clients."""
        headers = {HEADER_NODE: self.node_id, HEADER_USER: user_id, HEADER_KIND: kind}
        self._tasks.spawn(
            self._nats.nc.publish(doc_awareness_subject(self.doc_id), payload, headers=headers)
        )

    async def _on_message(self, msg: Msg) -> None:
        headers = msg.headers or {}
        node = headers.get(HEADER_NODE)
        if self.stopped or not node or node == self.node_id:
            return
        if headers.get(HEADER_KIND) == KIND_QUERY:
            for user_id, entries in self.registry.local_states().items():
                self._publish(user_id, entries)
            return
        try:
            entries = decode_awareness(msg.data)
        except ProtocolError as err:
            log.warning("room.remote_awareness_malformed", doc_id=self.doc_id, error=str(err))
            return
        owner = headers.get(HEADER_USER) or None
        changes = self.registry.apply_remote(node, owner, entries, time.monotonic())
        if changes:
            self._fan_out(changes)
