"""A room's follower of its document's JSON events (`collab.doc.<id>.event`: comment threads).

One ordered JetStream consumer per room per node — not per socket — started when the first socket
that wants events joins (rooms of stock y-websocket clients have none), at the stream's last
sequence + 1 (nothing on the subject can be older and still unseen: the
stream sequence is global), so every event committed on any node reaches the room once, in stream
order, and the room hands it to its sockets. nats-py restarts an ordered consumer after the last
sequence it delivered when heartbeats stop (a NATS outage), so nothing is resynced here.

Resume (`?events_since=S` on the document socket): `read(S)` replays the subject's events after S
from JetStream with a short-lived consumer, like the document log's own catch-up
(`bus/doc_log.py` `read`); events older than the stream keeps cannot be replayed (`Expired`).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import Callable
from typing import Any

import nats.errors
import nats.js.errors
import structlog
from nats.js.api import ConsumerConfig, DeliverPolicy

from bus.connection import NatsConnection
from bus.jetstream import EVENTS_STREAM, doc_event_subject
from core.errors import Unavailable

log = structlog.get_logger(__name__)

CONSUMER_HEARTBEAT_S = 5.0
READ_TIMEOUT_S = 5.0
_NATS_ERRORS = (nats.errors.Error, nats.js.errors.Error, asyncio.TimeoutError)

Event = tuple[int, dict[str, Any]]


class Expired(Exception):
    """The events after the asked sequence are no longer all in the stream (or it is ahead)."""

    def __init__(self, reason: str, seq: int) -> None:
        super().__init__(reason)
        self.reason = reason
        self.seq = seq


def _decode(msg: Any) -> Event | None:
    try:
        return int(msg.metadata.sequence.stream), json.loads(msg.data)
    except (ValueError, TypeError, AttributeError) as err:
        log.error("doc_events.poison_event", subject=msg.subject, error=repr(err))
        return None


class DocEvents:
    def __init__(
        self, doc_id: str, nats_conn: NatsConnection, fan_out: Callable[[int, dict[str, Any]], None]
    ) -> None:
        self.doc_id = doc_id
        self.nats = nats_conn
        self.fan_out = fan_out
        self.seq = 0  # every event of the document up to here has been handed to the room
        self._sub: Any = None
        self._starting: asyncio.Future[None] | None = None

    async def ensure_started(self) -> None:
        """Follow the subject from now on; started by the first socket that wants events (a
        room of stock y-websocket clients never pays for a consumer), shared by the others."""
        if self._starting is None:
            self._starting = asyncio.ensure_future(self._start())
        try:
            await asyncio.shield(self._starting)
        except Unavailable:
            self._starting = None  # the next socket tries again
            raise

    async def _start(self) -> None:
        _first, last = await self.stream_range()
        self.seq = last
        self._sub = await self._subscribe(last + 1, self._on_msg)

    async def stop(self) -> None:
        if self._starting is not None and not self._starting.done():
            self._starting.cancel()
            with contextlib.suppress(asyncio.CancelledError, Unavailable):
                await self._starting
        sub, self._sub = self._sub, None
        if sub is not None:
            with contextlib.suppress(*_NATS_ERRORS, asyncio.CancelledError):
                await sub.unsubscribe()

    async def _on_msg(self, msg: Any) -> None:
        event = _decode(msg)
        if event is None or event[0] <= self.seq:
            return
        self.seq = event[0]
        self.fan_out(*event)

    async def stream_range(self) -> tuple[int, int]:
        try:
            info = await self.nats.jetstream.stream_info(EVENTS_STREAM)
        except _NATS_ERRORS as err:
            raise Unavailable("event log unavailable") from err
        return int(info.state.first_seq), int(info.state.last_seq)

    async def _subscribe(self, start_seq: int, cb: Callable[[Any], Any]) -> Any:
        try:
            return await self.nats.jetstream.subscribe(
                doc_event_subject(self.doc_id),
                stream=EVENTS_STREAM,
                cb=cb,
                ordered_consumer=True,
                config=ConsumerConfig(
                    deliver_policy=DeliverPolicy.BY_START_SEQUENCE, opt_start_seq=start_seq
                ),
                idle_heartbeat=CONSUMER_HEARTBEAT_S,
            )
        except _NATS_ERRORS as err:
            raise Unavailable("event log unavailable") from err

    async def _last_on_subject(self) -> int:
        try:
            msg = await self.nats.jetstream.get_last_msg(
                EVENTS_STREAM, doc_event_subject(self.doc_id), direct=True
            )
        except nats.js.errors.NotFoundError:
            return 0
        except _NATS_ERRORS as err:
            raise Unavailable("event log unavailable") from err
        return int(msg.seq or 0)

    async def read(self, after_seq: int) -> list[Event]:
        """The document's events after `after_seq`, up to the newest at call time."""
        first, last = await self.stream_range()
        if after_seq > last:
            raise Expired("ahead_of_stream", last)
        if after_seq + 1 < first:
            raise Expired("too_far_behind", last)
        target = await self._last_on_subject()
        if target <= after_seq:
            return []
        events: list[Event] = []
        done = asyncio.Event()

        async def collect(msg: Any) -> None:
            event = _decode(msg)
            if event is not None and event[0] <= target:
                events.append(event)
            if event is None or event[0] >= target:
                done.set()

        sub = await self._subscribe(after_seq + 1, collect)
        try:
            await asyncio.wait_for(done.wait(), READ_TIMEOUT_S)
        except TimeoutError as err:
            raise Unavailable("event log read timed out") from err
        finally:
            with contextlib.suppress(*_NATS_ERRORS):
                await sub.unsubscribe()
        return events
