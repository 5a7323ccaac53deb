"""One WebSocket on one document: the y-websocket and JSON-envelope protocols, without Tornado.

A session turns frames into calls on its room and room events into frames. What every socket kind
shares -- the limits (token bucket, bounded inbound queue, malformed-message budget), the worker
that handles frames one at a time in arrival order (so one client's updates reach the log in the
order it sent them) under a catch-all (a bad frame or a pycrdt panic costs the sender an error
message, never the socket, the room or the node, DESIGN.md §7), the slow-reader rule and closing --
is the hub's `Connection` (live/hub.py). This module holds only what documents add.

The transport (handlers/ws_auth.py) implements `live.hub.Transport`; tests can use a fake one.
"""

from __future__ import annotations

import hashlib
import secrets
import time
from dataclasses import dataclass
from functools import lru_cache
from typing import Any, Protocol

import pycrdt
import structlog

from bus.doc_log import DocLog, DocLogRejected
from bus.revocations import Revocation
from core.errors import CloseCode, Unavailable
from core.yjs_state import single_client
from live import envelope
from live.doc_events import Expired
from live.hub import Connection, Identity, SocketLimits, Transport
from live.protocol import (
    EMPTY_UPDATE,
    MAX_SAFE_INTEGER,
    AuthMessage,
    AwarenessEntry,
    AwarenessMessage,
    MessageType,
    ProtocolError,
    QueryAwareness,
    SyncStep1,
    SyncStep2,
    SyncUpdate,
    YSyncMessageType,
    awareness_frame_client_ids,
    call_pycrdt,
    decode_message,
    encode_awareness,
    encode_awareness_entries,
    encode_permission_denied,
    encode_sync_step1,
    encode_sync_step2,
    encode_update,
    validate_update,
)
from live.room import AwarenessBatch, DocumentTooLarge, Room, UpdateBatch
from models.db import Database
from models.repo import doc_snapshots
from server.settings import Settings
from services.policy import Access, Action, Resource

log = structlog.get_logger(__name__)

# Malformed frames are answered one by one; a client that keeps sending them is broken or hostile.
BAD_MESSAGES_BEFORE_CLOSE = 20
# A JSON ack waits until the room applied (and delivered) everything up to its version, so a
# client's versions only ever grow; a stuck consumer must not hold the ack for longer than this.
ACK_ORDER_WAIT_S = 2.0
# How an incremental-update frame starts: both varuints are below 128, so one byte each.
UPDATE_FRAME_PREFIX = bytes((MessageType.SYNC, YSyncMessageType.SYNC_UPDATE))
_AWARENESS_TYPE = bytes((MessageType.AWARENESS,))
# JSON connections get a synthetic awareness client id above the 32-bit ids Yjs draws, so it can
# never collide with a real Yjs client.
SYNTHETIC_CLIENT_ID_MIN = 2**32


class RoomSource(Protocol):
    async def acquire(self, doc_id: str) -> Room: ...


@lru_cache(maxsize=8)
def document_limits(settings: Settings) -> SocketLimits:
    """The document socket's limits: all settings (a frame's size is Tornado's, 1009); one
    instance per settings, shared by every socket of the node."""
    return SocketLimits(
        rate_per_s=settings.ws_rate_per_s,
        burst=settings.ws_burst,
        bad_frames_before_close=BAD_MESSAGES_BEFORE_CLOSE,
        queue_max_msgs=settings.ws_queue_max_msgs,
        queue_max_bytes=settings.ws_queue_max_bytes,
        max_pending_bytes=settings.ws_max_pending_bytes,
    )


@dataclass(frozen=True)
class SessionDeps:
    rooms: RoomSource
    db: Database
    doc_log: DocLog
    settings: Settings


class Session(Connection):
    """What both document protocols share: the room, the role, access changes."""

    __slots__ = (
        "_held_events",
        "can_edit",
        "deps",
        "doc_id",
        "events",
        "events_cursor",
        "events_since",
        "role",
        "room",
        "settings",
    )

    def __init__(
        self,
        *,
        conn_id: str,
        doc_id: str,
        identity: Identity,
        access: Access,
        transport: Transport,
        deps: SessionDeps,
        events: bool = False,
        events_since: int | None = None,
    ) -> None:
        super().__init__(
            conn_id=conn_id,
            identity=identity,
            workspace_id=access.workspace_id,
            transport=transport,
            limits=document_limits(deps.settings),
        )
        self.doc_id = doc_id
        self.role = access.resource_role
        self.can_edit = access.allows(Action.DOCUMENT_EDIT)
        self.deps = deps
        self.settings = deps.settings
        self.room: Room | None = None
        # The document's JSON events (comment threads) as text frames; `events_cursor` is the
        # stream sequence of the last one sent (resume with `?events_since=`).
        self.events = events
        self.events_since = events_since
        self.events_cursor = 0
        self._held_events: list[tuple[int, dict[str, Any]]] | None = None

    # --- the hub's hooks ---------------------------------------------------------------------

    async def open(self) -> None:
        self.room = await self.deps.rooms.acquire(self.doc_id)
        if self.closed:
            return
        # Joining must follow the acquire with no await in between (an idle room may unload);
        # events arriving from the join on wait here until the position frame is out.
        self._held_events = [] if self.events else None
        await self._open(self.room)
        if self.events and not self.closed:
            await self._open_events(self.room)

    async def _open_events(self, room: Room) -> None:
        """`{"type":"events","seq":S}` then every event after S: replayed from the stream for a
        resume, then live, each once and in order."""
        try:
            await room.events.ensure_started()
        except Unavailable:
            self.close(CloseCode.TRY_AGAIN_LATER, "event log unavailable, retry")
            return
        seq, refetch = room.events.seq, None
        replay: list[tuple[int, dict[str, Any]]] = []
        if self.events_since is not None:
            seq = self.events_since
            try:
                replay = await room.events.read(seq)
            except Expired as err:
                seq, refetch = err.seq, err.reason
            except Unavailable:
                seq, refetch = room.events.seq, "log_unavailable"
        self.events_cursor = seq
        self.send(envelope.events_position(seq, refetch))
        held, self._held_events = self._held_events or [], None
        for event_seq, event in [*replay, *held]:
            self.deliver_event(event_seq, event)

    def deliver_event(self, seq: int, event: dict[str, Any]) -> None:
        """One document event, in stream order, never twice."""
        if not self.events:
            return
        if self._held_events is not None:
            self._held_events.append((seq, event))
            return
        if seq <= self.events_cursor:
            return
        self.events_cursor = seq
        self.send(envelope.document_event(seq, event))

    def leave(self) -> None:
        if self.room is not None:
            self.room.leave(self)

    def resource(self) -> Resource:
        return Resource.document(self.doc_id)

    def affected_by(self, revocation: Revocation) -> bool:
        # A board revocation concerns the documents on it (they inherit the board's roles), so
        # anything not naming a document falls back to the workspace.
        if revocation.resource_type == "document" and revocation.resource_id:
            return self.doc_id == revocation.resource_id
        if revocation.workspace_id:
            return self.workspace_id == revocation.workspace_id
        return True

    def apply_access(self, access: Access | None) -> None:
        """Apply a permission change in place (revocation signal or NATS reconnect re-check)."""
        if self.closed:
            return
        if access is None or not access.allows(Action.DOCUMENT_VIEW):
            self.close(CloseCode.FORBIDDEN, "access to this document was revoked")
            return
        could_edit, old_role = self.can_edit, self.role
        self.role = access.resource_role
        self.can_edit = access.allows(Action.DOCUMENT_EDIT)
        if self.can_edit != could_edit or self.role != old_role:
            log.info("ws.access_changed", conn=self.conn_id, role=self.role_label)
            self._permission_changed()

    @property
    def role_label(self) -> str | None:
        return None if self.role is None else self.role.label

    def _read_only_reason(self) -> str:
        return f"read-only: your role on this document is {self.role_label}"

    # --- to be provided by each protocol --------------------------------------------------------

    async def _open(self, room: Room) -> None:
        raise NotImplementedError

    def _permission_changed(self) -> None:
        raise NotImplementedError

    def deliver_updates(self, batch: UpdateBatch) -> None:
        raise NotImplementedError

    def deliver_awareness(self, batch: AwarenessBatch) -> None:
        raise NotImplementedError

    def renew_presence(self, now: float) -> None:
        return None


class YjsSession(Session):
    """The stock y-websocket protocol on binary frames.

    y-protocols has no error message; the only thing a stock client shows is an auth
    permission-denied frame (it logs the reason and keeps the connection), so every refusal that
    keeps the socket open is sent as one, with a reason that says what happened.
    """

    kind = "yjs"
    __slots__ = ()

    async def _open(self, room: Room) -> None:
        room.join(self)
        self.send(encode_sync_step1(room.state_vector()))
        states = room.awareness.states()
        if states:
            self.send(encode_awareness(encode_awareness_entries(states)))

    def next_frame(self) -> bytes | str:
        """A run of queued update frames becomes one update frame: one token, one publish.

        The stock provider sends one frame per Yjs transaction, so a program writing thousands
        of small updates (an importer, an agent) would otherwise be paced one update per token
        and published one by one. Merging is exact (Yjs updates merge without loss) and keeps
        the order of everything else: only consecutive updates merge, and never past the frame
        size limit (the merged update must fit one log message).
        """
        first = self.pop_queued()
        # Only a run of two or more is decoded here (`on_frame` validates a lone frame: once).
        if not (self.can_edit and _looks_like_update(first)) or not _looks_like_update(
            self.peek_queued()
        ):
            return first
        if _update_of(first) is None:
            return first
        run: list[bytes | str] = [first]
        size = len(first)
        while (following := self.peek_queued()) is not None:
            update = _update_of(following)
            if update is None or size + len(following) > self.settings.max_frame_bytes:
                break
            run.append(self.pop_queued())
            size += len(following)
        if len(run) == 1:
            return first
        updates = [u for u in map(_update_of, run) if u is not None]
        try:
            return encode_update(call_pycrdt("merge", pycrdt.merge_updates, *updates))
        except ProtocolError:  # one of them is bad after all: handle them one by one
            self.requeue_front(run[1:])
            return first

    async def on_frame(self, message: bytes | str) -> None:
        room = self.room
        assert room is not None
        if isinstance(message, str):
            self.reject("unsupported_frame", "text frames need ?format=json")
            return
        if self.settles_at_once(message):
            return
        try:
            decoded = decode_message(message)
        except ProtocolError as err:
            self.reject("malformed_message", f"malformed message: {err}")
            return
        match decoded:
            case SyncStep1(state_vector=state_vector):
                self.send(encode_sync_step2(room.diff(state_vector)))
            case SyncStep2(update=update):
                await self._on_update(room, update, initial=True)
            case SyncUpdate(update=update):
                await self._on_update(room, update, initial=False)
            case AwarenessMessage(entries=entries):
                nudges = room.apply_awareness(self, list(entries))
                if nudges:
                    self.send(encode_awareness(encode_awareness_entries(nudges)))
            case QueryAwareness():
                self.send(encode_awareness(encode_awareness_entries(room.awareness.states())))
            case AuthMessage():
                pass  # servers send these; a client's is meaningless and harmless

    def settles_at_once(self, message: bytes | str) -> bool:
        """An awareness frame that only repeats states other local connections hold (what a
        stock provider sends back for every awareness update it receives): ignored unread, as
        the full path would ignore it after parsing every JSON state (issue 15: at 50 × 20 most
        awareness frames are these) -- by the worker, or where it is read (live/hub.py)."""
        room = self.room
        if room is None or not isinstance(message, bytes) or message[:1] != _AWARENESS_TYPE:
            return False
        client_ids = awareness_frame_client_ids(message)
        return client_ids is not None and room.awareness.held_by_others(self.conn_id, client_ids)

    async def _on_update(self, room: Room, update: bytes, *, initial: bool) -> None:
        if update == EMPTY_UPDATE:
            return
        # Every reconnect's SyncStep2 carries the client's whole delete set, usually nothing new:
        # not an edit (no permission-denied for viewers) and not worth a log entry (editors).
        if initial and not room.would_change(update):
            return
        if not self.can_edit:
            self.error("forbidden", self._read_only_reason())
            return
        # Raw Yjs updates are idempotent, so a content hash is a sufficient message id: the same
        # bytes re-sent (a reconnect's SyncStep2) are deduplicated by JetStream within its window.
        # Such a re-send is rare (a SyncStep2 that would not change the room is not sent at all),
        # so the update is confirmed by its own message coming back, not by a PubAck.
        msg_id = f"y:{self.doc_id}:{hashlib.sha256(update).hexdigest()[:40]}"
        try:
            await room.publish(self, update, msg_id, confirm_by_echo=True)
        except (DocumentTooLarge, DocLogRejected) as err:
            self.error(err.code, err.message)
        except Unavailable:
            # The provider keeps the update and sends it again in its SyncStep2 after reconnecting.
            self.close(CloseCode.TRY_AGAIN_LATER, "document log unavailable, retry")

    def error(self, code: str, message: str, msg_id: str | None = None) -> None:
        self.send(encode_permission_denied(f"{code}: {message}"))

    def _permission_changed(self) -> None:
        if not self.can_edit:
            self.send(encode_permission_denied(f"permission: {self._read_only_reason()}"))

    def deliver_updates(self, batch: UpdateBatch) -> None:
        if not batch.only_from(self.conn_id):
            self.send(batch.yjs_frame)

    def deliver_awareness(self, batch: AwarenessBatch) -> None:
        # Echoed to the sender too, like the reference server: the provider drops a connection
        # that received nothing for 30 s, and its own 15 s renewal coming back is what it expects.
        self.send(batch.yjs_frame)


def _looks_like_update(frame: bytes | str | None) -> bool:
    """Whether a frame starts like an incremental update (message 0 = sync, sync type 2), by
    its first two bytes: a cheap filter before the strict decode of `_update_of`."""
    return isinstance(frame, bytes) and frame[:2] == UPDATE_FRAME_PREFIX


def _update_of(frame: bytes | str) -> bytes | None:
    """The update of an incremental-update frame (strictly decoded), else None."""
    if not isinstance(frame, bytes):
        return None
    try:
        decoded = decode_message(frame)
    except ProtocolError:
        return None
    return decoded.update if isinstance(decoded, SyncUpdate) else None


class JsonSession(Session):
    """The JSON envelope on text frames (docs/realtime.md)."""

    kind = "json"
    __slots__ = (
        "_catching_up",
        "_fields",
        "_presence_at",
        "_presence_clock",
        "cursor",
        "presence_id",
        "since",
    )

    def __init__(self, *, since: int | None = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.since = since
        self.cursor = 0  # highest version this client has been given, in order
        self._catching_up: list[UpdateBatch] | None = None
        self.presence_id = SYNTHETIC_CLIENT_ID_MIN + secrets.randbelow(
            MAX_SAFE_INTEGER - SYNTHETIC_CLIENT_ID_MIN
        )
        self._fields: dict[str, Any] = {}
        self._presence_clock = 0
        self._presence_at = 0.0

    # --- opening -----------------------------------------------------------------------------

    async def _open(self, room: Room) -> None:
        if self.since is None:
            self._join_with_state(room, None)
        else:
            await self._join_since(room, self.since)
        for entry in room.awareness.states():
            user_id = room.awareness.user_of(entry.client_id)
            self.send(envelope.presence("presence", entry.client_id, user_id, entry.state))
        self._announce(time.monotonic())

    def _join_with_state(self, room: Room, reason: str | None) -> None:
        """Join and send the whole state at the room's version in one step (no gap)."""
        room.join(self)
        self.cursor = room.last_applied_seq
        self.send(envelope.sync(self.cursor, room.full_state(), reason))

    async def _join_since(self, room: Room, since: int) -> None:
        """Send only the operations after `since`, read from the log; full state if they may have
        been compacted away (older than the latest snapshot) or `since` is unknown here."""
        if since > room.last_applied_seq:
            await room.wait_applied(since, ACK_ORDER_WAIT_S)
        if since > room.last_applied_seq:
            self._join_with_state(room, "since_ahead")
            return
        try:
            snapshot_seq = await doc_snapshots.get_snapshot_seq(self.deps.db, self.doc_id)
        except Unavailable:
            self._join_with_state(room, "since_unverifiable")
            return
        if since < snapshot_seq:
            self._join_with_state(room, "since_compacted")
            return
        self._catching_up = []
        room.join(self)  # live updates are buffered from here on, so nothing falls in between
        try:
            entries = await self.deps.doc_log.read(self.doc_id, since)
        except Unavailable:
            entries = None
        buffered, self._catching_up = self._catching_up, None
        if entries is None:
            self.cursor = room.last_applied_seq
            self.send(envelope.sync(self.cursor, room.full_state(), "log_unavailable"))
        else:
            self._send_catch_up(since, entries)
        for batch in buffered:
            self._send_batch(batch)

    def _send_catch_up(self, since: int, entries: list[Any]) -> None:
        items = [
            envelope.operation_body(e.update, e.seq, e.user, single_client(e.update))
            for e in entries
            if e.seq > since
        ]
        self.cursor = max([since] + [e.seq for e in entries])
        self.send(envelope.operations(since, self.cursor, items))

    # --- inbound -----------------------------------------------------------------------------

    async def on_frame(self, message: bytes | str) -> None:
        if isinstance(message, bytes):
            self.reject("unsupported_frame", "binary frames need the y-websocket format")
            return
        try:
            parsed = envelope.parse(message)
        except envelope.EnvelopeError as err:
            self.reject(err.code, err.message, err.msg_id)
            return
        match parsed:
            case envelope.OperationMessage():
                await self._on_operation(parsed)
            case envelope.PresenceMessage():
                self._on_presence(parsed)
            case envelope.PingMessage(id=msg_id):
                self.send(envelope.pong(msg_id))

    async def _on_operation(self, op: envelope.OperationMessage) -> None:
        room = self.room
        assert room is not None
        if not self.can_edit:
            self.error("forbidden", self._read_only_reason(), op.id)
            return
        # Scoped per user: two users' client ids never collide, and a user cannot replay (or
        # probe) another user's operation ids.
        msg_id = f"op:{self.doc_id}:{self.user_id}:{op.id}"
        digest = hashlib.sha256(op.update).digest()
        known = await self._known_operation(msg_id)
        if known is not None:
            if known.digest is not None and known.digest != digest:
                self._id_reused(op.id, known.seq)
            else:
                self.send(envelope.ack(op.id, known.seq, duplicate=True))
            return
        try:
            validate_update(op.update)
        except ProtocolError as err:
            self.reject("invalid_update", f"payload is not a valid Yjs v1 update: {err}", op.id)
            return
        try:
            ack = await room.publish(self, op.update, msg_id)
            # JetStream deduplicated the id (the map did not know it: Postgres was down, or a
            # concurrent send won): a duplicate only if it is the same payload.
            if ack.duplicate and await self.deps.doc_log.update_at(ack.seq) not in (
                None,
                op.update,
            ):
                self._id_reused(op.id, ack.seq)
                return
        except (DocumentTooLarge, DocLogRejected, Unavailable) as err:
            self.error(err.code, err.message, op.id)
            return
        seq = await self._remember_operation(msg_id, ack.seq, digest)
        await room.wait_applied(seq, ACK_ORDER_WAIT_S)
        self.cursor = max(self.cursor, seq)
        self.send(envelope.ack(op.id, seq, duplicate=ack.duplicate or seq != ack.seq))

    def _id_reused(self, op_id: str, seq: int) -> None:
        """Same id, other payload: acking it as a duplicate would drop the edit silently and
        fork the client (issue 17 item 6); nothing is applied and the client is told."""
        self.error(
            "id_reused",
            f"operation id {op_id!r} was already used for a different update (version {seq}):"
            " send this update with a new id",
            op_id,
        )

    async def _known_operation(self, msg_id: str) -> doc_snapshots.RecordedOperation | None:
        """What a message id got before, from the durable map (it outlives JetStream's
        duplicate window and purges). Postgres down: JetStream's own dedupe still applies."""
        try:
            return await doc_snapshots.get_operation(self.deps.db, self.doc_id, msg_id)
        except Unavailable as err:
            log.warning("ws.operation_lookup_failed", doc_id=self.doc_id, error=str(err))
            return None

    async def _remember_operation(self, msg_id: str, seq: int, digest: bytes) -> int:
        try:
            return await doc_snapshots.record_operation(
                self.deps.db, self.doc_id, msg_id, seq, digest
            )
        except Unavailable as err:
            log.warning("ws.operation_record_failed", doc_id=self.doc_id, error=str(err))
            return seq

    # --- presence (a synthetic awareness client id per JSON connection) -------------------------

    def _on_presence(self, message: envelope.PresenceMessage) -> None:
        if message.type == "presence":
            keep: dict[str, Any] = {
                k: self._fields[k] for k in ("cursor", "typing") if k in self._fields
            }
            self._fields = {**(message.data or {}), **keep}
        elif message.data is None:
            self._fields.pop(message.type, None)
        else:
            self._fields[message.type] = message.data
        self._fields.pop("user", None)  # server-owned: who this is, from the token
        try:
            self._announce(time.monotonic())
        except ProtocolError as err:
            self.reject("presence_too_large", str(err), message.id)

    def _state(self) -> dict[str, Any]:
        user = {"id": self.user_id, "name": self.identity.display_name}
        return {"user": user, **self._fields}

    def _announce(self, now: float) -> None:
        room = self.room
        if room is None or self.closed:
            return
        self._presence_clock += 1
        entry = AwarenessEntry(self.presence_id, self._presence_clock, self._state())
        encode_awareness_entries([entry])  # raises ProtocolError if the state is too large
        self._presence_at = now
        room.apply_awareness(self, [entry])

    def renew_presence(self, now: float) -> None:
        """y-protocols peers drop states not renewed within 30 s; clients renew every 15 s."""
        if now - self._presence_at >= self.settings.awareness_timeout_s / 2:
            self._announce(now)

    # --- outbound ----------------------------------------------------------------------------

    def error(self, code: str, message: str, msg_id: str | None = None) -> None:
        self.send(envelope.error(code, message, msg_id))

    def _permission_changed(self) -> None:
        reason = "your role changed" if self.can_edit else self._read_only_reason()
        self.send(envelope.permission(self.role_label, not self.can_edit, reason))

    def deliver_updates(self, batch: UpdateBatch) -> None:
        if self._catching_up is not None:
            self._catching_up.append(batch)
        else:
            self._send_batch(batch)

    def _send_batch(self, batch: UpdateBatch) -> None:
        for index, update in enumerate(batch.updates):
            if update.seq <= self.cursor:
                continue
            self.cursor = update.seq
            if update.conn_id != self.conn_id:  # its own operations are acknowledged instead
                self.send(batch.json_messages[index])

    def deliver_awareness(self, batch: AwarenessBatch) -> None:
        for change in batch.changes:
            if change.entry.client_id != self.presence_id and change.changed:
                for text in envelope.presence_messages(
                    change.entry.client_id, change.user_id, change.entry.state, change.previous
                ):
                    self.send(text)
