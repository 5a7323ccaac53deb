"""`/ws/documents/<id>`: the real-time document socket (thin transport adapter).

Authentication and authorization run in `get()`, before the upgrade is accepted. A refused client
still gets the upgrade and then an immediate close with a 44xx code and a reason: browsers cannot
read the HTTP status of a failed handshake, and the stock y-websocket provider stops reconnecting
on 4400-4499 (4401 bad token, 4403 no access, 4404 no such document). A forbidden `Origin` is the
exception: it is refused with HTTP 403 at the handshake (CSWSH; Tornado's cross-origin check).

Everything protocol-related lives in streams/session.py; this module moves frames and enforces the
per-socket outbound bound (a client that stops reading is closed, R18).
"""

from __future__ import annotations

import re
from typing import Any

import marshmallow
import structlog
import tornado.websocket
from marshmallow import fields, validate

from handlers.base import parse_uuid
from handlers.routing import route
from models.repo import users as users_repo
from server.context import AppContext
from services import policy
from services.auth_guard import authenticate_token, bearer_token
from services.errors import AppError, NotFound, Unauthorized, ValidationFailed
from services.policy import Action, Resource
from streams.rooms import RoomManager
from streams.session import Identity, JsonSession, Session, YjsSession

log = structlog.get_logger("collab.ws")

# A JWT (three base64url segments) offered as a WebSocket subprotocol, for browsers that cannot set
# headers and should not put tokens in URLs. The client offers ["collab", <token>]; we select
# "collab" (or the token itself if that is all it offered: a browser requires an echo).
_JWT_PATTERN = re.compile(r"^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*$")
SUBPROTOCOL = "collab"
SLOW_READER_CLOSE = 1008  # "policy violation": y-websocket reconnects (not 44xx) and resyncs


class SocketQuerySchema(marshmallow.Schema):
    token = fields.String(load_default=None)
    format = fields.String(load_default="yjs", validate=validate.OneOf(["yjs", "json"]))
    since = fields.Integer(load_default=None, allow_none=True, validate=validate.Range(min=0))


class DocumentSocketHandler(tornado.websocket.WebSocketHandler):
    """Binary frames: y-websocket. Text frames (with `?format=json`): the JSON envelope."""

    openapi = {
        "get": {
            "summary": "WebSocket upgrade: real-time document editing (docs/realtime.md)",
            "query": SocketQuerySchema,
            "status": 101,
            "auth": True,
        }
    }

    def initialize(self, ctx: AppContext) -> None:
        self.ctx = ctx
        self.session: Session | None = None
        self._rejection: AppError | None = None
        self._accepted: dict[str, Any] = {}
        self._raw_token = ""
        self._pending_bytes = 0

    @property
    def rooms(self) -> RoomManager:
        return self.ctx.services["rooms"]

    # --- handshake ---------------------------------------------------------------------------

    async def get(self, *args: Any, **kwargs: Any) -> None:
        try:
            self._accepted = await self._authorize(kwargs["doc_id"])
        except AppError as err:
            self._rejection = err
        await super().get(*args, **kwargs)

    async def _authorize(self, raw_doc_id: str) -> dict[str, Any]:
        query = self._query()
        principal = await authenticate_token(self.ctx, self._token(query))
        doc_id = parse_uuid(raw_doc_id, "doc_id")
        access = await policy.load_access(self.ctx, principal.user_id, Resource.document(doc_id))
        if access is None or not access.allows(Action.DOCUMENT_VIEW):
            raise NotFound("document not found")
        user = await users_repo.get_user(self.ctx.db, principal.user_id)
        if user is None:
            raise Unauthorized("invalid or expired token", code="invalid_token")
        identity = Identity(
            user_id=principal.user_id,
            display_name=user["display_name"],
            family_id=principal.family_id,
            token=self._raw_token,
            expires_at=principal.expires_at,
        )
        return {"doc_id": doc_id, "identity": identity, "access": access, **query}

    def _query(self) -> dict[str, Any]:
        raw = {key: self.get_query_argument(key) for key in self.request.query_arguments}
        try:
            return SocketQuerySchema().load(raw)
        except marshmallow.ValidationError as err:
            raise ValidationFailed(f"invalid query: {err.messages}") from err

    def _token(self, query: dict[str, Any]) -> str:
        """`?token=`, else `Authorization: Bearer`, else a JWT-shaped subprotocol."""
        token = query.get("token")
        if not token and self.request.headers.get("Authorization"):
            token = bearer_token(self.request.headers.get("Authorization"))
        if not token:
            token = next((p for p in self._offered_protocols() if _JWT_PATTERN.match(p)), None)
        if not token:
            raise Unauthorized("missing access token", code="missing_token")
        self._raw_token = token
        return token

    def _offered_protocols(self) -> list[str]:
        header = self.request.headers.get("Sec-WebSocket-Protocol", "")
        return [p.strip() for p in header.split(",") if p.strip()]

    def select_subprotocol(self, subprotocols: list[str]) -> str | None:
        if SUBPROTOCOL in subprotocols:
            return SUBPROTOCOL
        return next((p for p in subprotocols if _JWT_PATTERN.match(p)), None)

    def check_origin(self, origin: str) -> bool:
        """Called only for cross-origin browser requests (same host is allowed by Tornado)."""
        allowed = self.ctx.settings.ws_allowed_origins
        return "*" in allowed or origin.rstrip("/") in allowed

    # --- socket lifecycle --------------------------------------------------------------------

    def open(self, *args: Any, **kwargs: Any) -> None:
        if self._rejection is not None:
            log.info("ws.rejected", code=self._rejection.code, reason=self._rejection.message)
            self.close(self._rejection.ws_close_code, self._rejection.message[:120])
            return
        if self.ctx.draining:
            self.close(1001, "server shutting down, reconnect")
            return
        self.set_nodelay(True)
        accepted = self._accepted
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

    def on_message(self, message: str | bytes) -> None:
        if self.session is None:
            return
        try:
            self.session.receive(message)
        except Exception as err:  # Tornado aborts the socket if on_message raises
            log.error("ws.receive_failed", conn=self.session.conn_id, error=repr(err))

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
        """Queue one frame; a socket whose unsent bytes pass the limit is closed (slow reader)."""
        if self.ws_connection is None or self.ws_connection.is_closing():
            return
        size = len(message)
        if self._pending_bytes + size > self.ctx.settings.ws_max_pending_bytes:
            log.warning("ws.slow_reader", conn=self._conn_label(), pending=self._pending_bytes)
            if self.session is not None:
                self.session.close(SLOW_READER_CLOSE, "client is not reading: too much pending")
            return
        try:
            future = self.write_message(message, binary=isinstance(message, bytes))
        except tornado.websocket.WebSocketClosedError:
            return
        self._pending_bytes += size
        future.add_done_callback(lambda done: self._written(size, done))

    def _written(self, size: int, future: Any) -> None:
        self._pending_bytes -= size
        if not future.cancelled():
            future.exception()  # retrieved: a closed stream is expected, not worth a warning

    def _conn_label(self) -> str:
        return self.session.conn_id if self.session is not None else "?"


ROUTES = [route("/ws/documents/{doc_id}/", DocumentSocketHandler)]
