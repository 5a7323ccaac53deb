"""The notification inbox over a WebSocket (`/ws/inbox`), without Tornado.

A socket follows its user's subject, `collab.user.<id>.notification` (stream COLLAB_EVENTS), on
whichever node it landed: every notification event (`notification.created`, `.read`,
`.archived`, `.unarchived`, each with the unread total after it) reaches every open inbox of the
user on every node, whichever node committed the change.

One ordered JetStream consumer per socket, not per user and node as for boards: the resume point
is the socket's own (each tab has its own `since`), a user has a handful of inbox sockets at most,
and an ordered consumer replays from a stream sequence and then follows live with no merge step.
It also recovers by itself after a NATS outage (nats-py restarts it after the last stream
sequence it delivered once two heartbeats are missed), so nothing is resynced here.

Resume: `?since=<stream seq>` (the `seq` of the last event frame the client applied, or of its
`ready`) replays every event after it. Events older than the stream keeps
(`COLLAB_EVENTS_STREAM_MAX_AGE_S`) or a `since` past the stream's end cannot be replayed: the
socket gets `{"type":"refetch",...}` first and continues live; the client reloads the inbox over
REST.

Frames out: `{"type":"ready","unread_count":N,"seq":S}` once (S: the resume point the socket
starts after), then `{"type":"event","seq":S,"event":<the subject's JSON>}` in stream order,
`{"type":"unread","unread_count":N}` when the count read from Postgres after events differs
from what the events said (two changes committed at the same moment each count without the
other's), `{"type":"refetch","reason":"too_far_behind"|"ahead_of_stream","seq":S}`, `{"type":"pong"}`,
`{"type":"error","code","message"}`. Frames in: `{"type":"ping"}`.

Access: the inbox is the user's own, so only the session matters (revoked or expired → 4401,
the hub's token rules); permission changes do not concern it. Slow readers: the hub's rule (1008).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from typing import TYPE_CHECKING, Any

import nats.errors
import nats.js.errors
import structlog
from nats.js.api import ConsumerConfig, DeliverPolicy

from bus.jetstream import EVENTS_STREAM, user_notification_subject
from bus.revocations import Revocation
from core.errors import AppError, Unavailable
from live.hub import Hub, Identity, JsonConnection, SocketLimits, Transport
from models.repo import notifications as notifications_repo
from services.policy import Access, Resource

if TYPE_CHECKING:
    from server.settings import Settings

log = structlog.get_logger(__name__)

# Unsent bytes for a socket that does not read: a notification event is under ~6 KiB (a 4 KiB
# preview at most), so this is a couple of hundred events; a client further behind resumes.
MAX_PENDING_BYTES = 1024 * 1024
# Inbound frames are pings: tiny, and rare.
MAX_INBOUND_FRAME_BYTES = 1024
INBOUND_RATE_PER_S = 5.0
INBOUND_BURST = 10
BAD_FRAMES_BEFORE_CLOSE = 20
CONSUMER_HEARTBEAT_S = 5.0


def inbox_limits(settings: Settings) -> SocketLimits:
    return SocketLimits(
        rate_per_s=INBOUND_RATE_PER_S,
        burst=INBOUND_BURST,
        bad_frames_before_close=BAD_FRAMES_BEFORE_CLOSE,
        queue_max_msgs=settings.ws_queue_max_msgs,
        queue_max_bytes=settings.ws_queue_max_bytes,
        max_pending_bytes=MAX_PENDING_BYTES,
        max_frame_bytes=MAX_INBOUND_FRAME_BYTES,
    )


class InboxConnection(JsonConnection):
    """One inbox socket: its consumer of the user's subject and its resume position."""

    kind = "inbox"
    protocol_name = "inbox"

    def __init__(
        self, feed: InboxFeed, identity: Identity, transport: Transport, *, since: int | None
    ) -> None:
        super().__init__(
            conn_id=feed.new_conn_id(),
            identity=identity,
            workspace_id="",
            transport=transport,
            limits=inbox_limits(feed.settings),
        )
        self.feed = feed
        self.since = since
        self.last_seq = 0
        self.subscription: Any = None
        self.unread = 0  # the unread total the client was told last
        self._recount: asyncio.Task[None] | None = None
        self._stale = False
        # Events that arrive before `ready` went out wait here (the consumer starts first).
        self._held: list[tuple[int, dict[str, Any]]] | None = []

    # --- the hub's hooks -----------------------------------------------------------------------

    async def open(self) -> None:
        """Subscribe from the resume point, then say `ready` with the unread total: an event
        committed in between arrives after `ready` and carries the newer total."""
        first_seq, last_seq = await self.feed.stream_range()
        start = last_seq if self.since is None else self.since
        if self.since is not None and (self.since > last_seq or self.since + 1 < first_seq):
            reason = "ahead_of_stream" if self.since > last_seq else "too_far_behind"
            self.send_json({"type": "refetch", "reason": reason, "seq": last_seq})
            start = last_seq
        self.last_seq = start
        self.subscription = await self.feed.follow(self, start + 1)
        if self.closed:
            return
        unread = await notifications_repo.unread_count(self.feed.ctx.db, self.user_id)
        self.unread = unread
        self.send_json({"type": "ready", "unread_count": unread, "seq": start})
        held, self._held = self._held or [], None
        for seq, event in held:
            self.deliver(seq, event)

    def leave(self) -> None:
        subscription, self.subscription = self.subscription, None
        if subscription is not None:
            self.feed.ctx.spawn(_unsubscribe(subscription), name="inbox-unsubscribe")

    def resource(self) -> Resource:
        raise NotImplementedError("the inbox is the user's own: no resource to re-check")

    def affected_by(self, revocation: Revocation) -> bool:
        return False

    def apply_access(self, access: Access | None) -> None:
        return None

    # --- outbound ------------------------------------------------------------------------------

    def deliver(self, seq: int, event: dict[str, Any]) -> None:
        """One event of the user's subject, in stream order, never twice."""
        if self._held is not None:
            self._held.append((seq, event))
            return
        if seq <= self.last_seq:
            return
        self.last_seq = seq
        self.send_json({"type": "event", "seq": seq, "event": event})
        if isinstance(event.get("unread_count"), int):
            self.unread = event["unread_count"]
        self._recount_soon()

    def _recount_soon(self) -> None:
        """Re-read the unread total after an event (one read at a time, again if events came
        in meanwhile): an event's count is what its transaction saw, and two changes committed
        at the same moment may each miss the other's."""
        if self._recount is not None and not self._recount.done():
            self._stale = True
            return
        self._recount = self.feed.ctx.spawn(self._send_true_count(), name="inbox-unread")

    async def _send_true_count(self) -> None:
        while not self.closed:
            self._stale = False
            try:
                count = await notifications_repo.unread_count(self.feed.ctx.db, self.user_id)
            except AppError as err:  # Postgres away: the next event tries again
                log.warning("inbox.recount_failed", user_id=self.user_id, error=err.message)
                return
            if self._stale:  # an event arrived meanwhile: its commit may be missing here
                continue
            if count != self.unread:
                self.unread = count
                self.send_json({"type": "unread", "unread_count": count})
            return

    # --- inbound -------------------------------------------------------------------------------

    async def on_frame(self, message: str | bytes) -> None:
        frame = self.json_frame(message)
        if frame is None:
            return
        if frame == {"type": "ping"}:
            self.send_json({"type": "pong"})
        else:
            self.reject("unknown_type", f"unknown frame type {str(frame.get('type'))[:40]!r}")


async def _unsubscribe(subscription: Any) -> None:
    # The connection may already be gone (node shutdown): nothing left to tell the server.
    with contextlib.suppress(nats.errors.Error, nats.js.errors.Error, asyncio.CancelledError):
        await subscription.unsubscribe()


class InboxFeed(Hub[InboxConnection]):
    """The inbox kind of the socket hub: each socket follows its user's notification subject."""

    going_away_reason = "server shutting down, reconnect with ?since="

    async def stream_range(self) -> tuple[int, int]:
        """The first and last sequence COLLAB_EVENTS holds (its messages expire by age)."""
        try:
            info = await self.ctx.nats.jetstream.stream_info(EVENTS_STREAM)
        except (nats.errors.Error, nats.js.errors.Error) as err:
            raise Unavailable("event log unavailable") from err
        return int(info.state.first_seq), int(info.state.last_seq)

    async def follow(self, conn: InboxConnection, start_seq: int) -> Any:
        """An ordered consumer of the user's subject from `start_seq`, delivering to `conn`."""

        async def on_msg(msg: Any) -> None:
            try:
                event = json.loads(msg.data)
                seq = int(msg.metadata.sequence.stream)
            except (ValueError, TypeError, AttributeError) as err:
                log.error("inbox.poison_event", user_id=conn.user_id, error=repr(err))
                return
            conn.deliver(seq, event)

        try:
            return await self.ctx.nats.jetstream.subscribe(
                user_notification_subject(conn.user_id),
                stream=EVENTS_STREAM,
                cb=on_msg,
                ordered_consumer=True,
                config=ConsumerConfig(
                    deliver_policy=DeliverPolicy.BY_START_SEQUENCE, opt_start_seq=start_seq
                ),
                idle_heartbeat=CONSUMER_HEARTBEAT_S,
            )
        except (nats.errors.Error, nats.js.errors.Error) as err:
            raise Unavailable("event log unavailable") from err

    async def recheck_access(self, conn: InboxConnection) -> None:
        """Nothing to re-check: the inbox belongs to its user (sessions are re-checked)."""

    async def stop_rooms(self) -> None:
        for conn in list(self.sockets.values()):
            subscription, conn.subscription = conn.subscription, None
            if subscription is not None:
                await _unsubscribe(subscription)

    def resync_rooms(self) -> None:
        """Ordered consumers restart themselves after the last sequence they delivered."""
