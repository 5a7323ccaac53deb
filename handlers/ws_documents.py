"""`/ws/documents/<id>`: the real-time document socket (thin transport adapter).

The handshake (handlers/ws_auth.py, shared with the board socket) authenticates the access JWT
(`?token=`, `Authorization: Bearer` or the `collab` subprotocol) and checks document view access
before the upgrade; a refused client still gets the upgrade and then an immediate close with a 44xx
code and a reason, split like the REST policy (`policy.require`): 4401 bad token, 4404 no such
document or not a member of its workspace, 4403 a workspace member who may not view it, 4400 bad
query. A forbidden `Origin` is refused with HTTP 403 at the handshake (CSWSH; Tornado's
cross-origin check).

Everything protocol-related lives in streams/session.py; this module moves frames and enforces the
per-socket outbound bound (a client that stops reading is closed, R18).
"""

from __future__ import annotations

from typing import Any, cast

import marshmallow
import structlog
import tornado.iostream
import tornado.websocket
from marshmallow import fields, validate

from handlers.base import parse_uuid
from handlers.routing import route
from handlers.ws_auth import AuthenticatedSocketHandler, Receiver
from server.context import AppContext
from services import policy
from services.auth_guard import Principal
from services.policy import Action, Resource
from streams.rooms import RoomManager
from streams.session import JsonSession, Session, YjsSession

log = structlog.get_logger("collab.ws")

SLOW_READER_CLOSE = 1008  # "policy violation": y-websocket reconnects (not 44xx) and resyncs


class SocketQuerySchema(marshmallow.Schema):
    token = fields.String(load_default=None)
    format = fields.String(load_default="yjs", validate=validate.OneOf(["yjs", "json"]))
    since = fields.Integer(load_default=None, allow_none=True, validate=validate.Range(min=0))


class DocumentSocketHandler(AuthenticatedSocketHandler):
    """Binary frames: y-websocket. Text frames (with `?format=json`): the JSON envelope."""

    query_schema = SocketQuerySchema
    openapi = {
        "get": {
            "summary": "WebSocket upgrade: real-time document editing (docs/realtime.md)",
            "query": SocketQuerySchema,
            "status": 101,
            "auth": True,
        }
    }

    def initialize(self, ctx: AppContext) -> None:
        super().initialize(ctx)
        self.session: Session | None = None
        self._pending_bytes = 0

    @property
    def rooms(self) -> RoomManager:
        return self.ctx.services["rooms"]

    async def authorize(self, principal: Principal, path_args: dict[str, Any]) -> dict[str, Any]:
        doc_id = parse_uuid(path_args["doc_id"], "doc_id")
        access = await policy.require(
            self.ctx, principal.user_id, Action.DOCUMENT_VIEW, Resource.document(doc_id)
        )
        return {"doc_id": doc_id, "access": access}

    # --- socket lifecycle --------------------------------------------------------------------

    def open(self, *args: Any, **kwargs: Any) -> None:
        if not self.admitted():
            return
        accepted = self.accepted
        session_class = JsonSession if accepted["format"] == "json" else YjsSession
        extra = {"since": accepted["since"]} if session_class is JsonSession else {}
        self.session = session_class(
            conn_id=self.rooms.new_conn_id(),
            doc_id=accepted["doc_id"],
            identity=accepted["identity"],
            access=accepted["access"],
            transport=self,
            deps=self.rooms.deps(),
            **extra,
        )
        self.rooms.register(self.session)
        self.session.start()
        log.info(
            "ws.open",
            conn=self.session.conn_id,
            doc_id=self.session.doc_id,
            user_id=self.session.user_id,
            kind=self.session.kind,
            role=self.session.role_label,
        )

    @property
    def receiver(self) -> Receiver | None:
        return self.session

    def on_close(self) -> None:
        if self.session is None:
            return
        self.session.transport_closed()
        self.rooms.unregister(self.session)
        log.info(
            "ws.close",
            conn=self.session.conn_id,
            doc_id=self.session.doc_id,
            code=self.close_code,
            reason=self.close_reason,
        )

    # --- Transport (what the session calls) -----------------------------------------------------

    def send(self, message: bytes | str) -> None:
        """Queue one frame; a socket whose unsent bytes pass the limit is closed (slow reader).

        The hot path of fan-out (one call per peer per update): `write_message` wraps every frame
        in a coroutine and an asyncio Task, which measured as the largest per-delivery cost
        (bench/FINDINGS.md: 2x deliveries per CPU-second at 50 rooms x 20 clients without it). The
        frame goes straight to Tornado's frame writer instead, and the slow-reader bound reads the
        stream's own unsent byte count; both fall back to the public API if Tornado changes.
        """
        connection = self.ws_connection
        if connection is None or connection.is_closing():
            return
        # Tornado internals (the direct-frame fast path): untyped on purpose, guarded by `direct`.
        stream: Any = getattr(connection, "stream", None)
        direct = _DIRECT_FRAMES and hasattr(stream, "_total_write_done_index")
        unsent = (
            stream._total_write_index - stream._total_write_done_index
            if direct
            else self._pending_bytes
        )
        if unsent + len(message) > self.ctx.settings.ws_max_pending_bytes:
            log.warning("ws.slow_reader", conn=self._conn_label(), pending=unsent)
            if self.session is not None:
                self.session.close(SLOW_READER_CLOSE, "client is not reading: too much pending")
            return
        binary = isinstance(message, bytes)
        try:
            if direct:
                payload = message if isinstance(message, bytes) else message.encode()
                cast(Any, connection)._write_frame(
                    True, _OPCODE_BINARY if binary else _OPCODE_TEXT, payload
                )
            else:
                self._track(len(message), self.write_message(message, binary=binary))
        except (tornado.websocket.WebSocketClosedError, tornado.iostream.StreamClosedError):
            return

    def _track(self, size: int, future: Any) -> None:
        self._pending_bytes += size
        future.add_done_callback(lambda done: self._written(size, done))

    def _written(self, size: int, future: Any) -> None:
        self._pending_bytes -= size
        if not future.cancelled():
            future.exception()  # retrieved: a closed stream is expected, not worth a warning

    def _conn_label(self) -> str:
        return self.session.conn_id if self.session is not None else "?"


_OPCODE_TEXT = 0x1
_OPCODE_BINARY = 0x2
# Tornado's frame writer and unsent-byte counters are internal; use them only where present.
_DIRECT_FRAMES = hasattr(tornado.websocket.WebSocketProtocol13, "_write_frame")

ROUTES = [route("/ws/documents/{doc_id}/", DocumentSocketHandler)]
