"""What every WebSocket endpoint does the same way: find the access token, pick the subprotocol,
check the Origin, and refuse a handshake with a close code that says why (DESIGN.md §4).

The token comes from `?token=`, else `Authorization: Bearer`, else a JWT-shaped value offered in
`Sec-WebSocket-Protocol` (browsers can set neither headers nor, safely, URLs): the client offers
`["collab", <token>]` and the server selects `collab` (or echoes the token if that is all it
offered, because a browser requires one of its offers back).
"""

from __future__ import annotations

import contextlib
import re
import urllib.parse
from collections.abc import Awaitable
from typing import Any

import marshmallow
import structlog
import tornado.httputil
import tornado.iostream
import tornado.websocket

from core.errors import (
    AppError,
    CloseCode,
    Forbidden,
    Unauthorized,
    UpgradeRequired,
    ValidationFailed,
)
from handlers import ws_wire
from handlers.base import JsonErrors
from handlers.ws_lingering import lingering_protocol
from live.admission import Seat
from live.hub import Connection, Hub, Identity, close_for
from models.repo import users as users_repo
from server.context import AppContext
from server.settings import Settings
from services.auth_guard import Principal, authenticate_token, bearer_token

log = structlog.get_logger("collab.ws")

JWT_PATTERN = re.compile(r"^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*$")
SUBPROTOCOL = "collab"


def offered_protocols(request: tornado.httputil.HTTPServerRequest) -> list[str]:
    header = request.headers.get("Sec-WebSocket-Protocol", "")
    return [p.strip() for p in header.split(",") if p.strip()]


def socket_token(request: tornado.httputil.HTTPServerRequest, query_token: str | None) -> str:
    """The raw access token of a WebSocket handshake, or 401 (`missing_token`)."""
    token = query_token
    if not token and request.headers.get("Authorization"):
        token = bearer_token(request.headers.get("Authorization"))
    if not token:
        token = next((p for p in offered_protocols(request) if JWT_PATTERN.match(p)), None)
    if not token:
        raise Unauthorized("missing access token", code="missing_token")
    return token


def choose_subprotocol(subprotocols: list[str]) -> str | None:
    if SUBPROTOCOL in subprotocols:
        return SUBPROTOCOL
    return next((p for p in subprotocols if JWT_PATTERN.match(p)), None)


def origin_allowed(settings: Settings, origin: str, host: str | None) -> bool:
    """Same host as the request, or listed in `COLLAB_WS_ALLOWED_ORIGINS` (CSWSH, S15)."""
    if urllib.parse.urlsplit(origin).netloc.lower() == (host or "").lower():
        return True
    allowed = settings.ws_allowed_origins
    return "*" in allowed or origin.rstrip("/") in allowed


def handshake_refusal(
    request: tornado.httputil.HTTPServerRequest, settings: Settings
) -> AppError | None:
    """Why this request cannot become a WebSocket, before any auth work: not an upgrade (a plain
    GET from a browser tab or a proxy that strips the headers) or a browser page on a foreign
    origin. Checked here so the answer is the JSON error body, not Tornado's plain-text one."""
    headers = request.headers
    connection = {token.strip().lower() for token in headers.get("Connection", "").split(",")}
    if headers.get("Upgrade", "").lower() != "websocket" or "upgrade" not in connection:
        return UpgradeRequired(
            "this endpoint only speaks WebSocket: send Upgrade: websocket, Connection: Upgrade",
            headers={"Upgrade": "websocket"},
        )
    origin = headers.get("Origin")
    if origin is not None and not origin_allowed(settings, origin, headers.get("Host")):
        return Forbidden(
            f"Origin {origin[:100]!r} is not allowed (COLLAB_WS_ALLOWED_ORIGINS)",
            code="origin_not_allowed",
        )
    return None


class AuthenticatedSocketHandler(JsonErrors, tornado.websocket.WebSocketHandler):
    """Authenticates in `get()`, before the upgrade, and is the transport of the socket hub's
    connection (live/hub.py); a kind of socket adds `authorize()`, `hub` and `make_connection()`.

    A refused handshake is still upgraded and then closed at once with the error's 44xx code and
    reason (`open()` calls `admitted()`): browsers cannot read the HTTP status of a failed
    handshake, and y-websocket-style clients stop reconnecting on 4400-4499. Two exceptions answer
    over HTTP with the JSON error body: a GET that is not an upgrade (426) and a forbidden Origin
    (403, CSWSH).
    """

    query_schema: type[marshmallow.Schema]
    # Our attributes in slots, so the instance __dict__ holds Tornado's ~28 only: CPython keeps
    # the dicts of a class's instances in a compact shared-key form up to 29 keys and gives each
    # a full hash table beyond (~1.3 KB more per idle socket; issue 15, bench/FINDINGS.md).
    __slots__ = (
        "_direct_frames",
        "_pending_bytes",
        "_pong",
        "_rejection",
        "_seat",
        "accepted",
        "connection",
        "ctx",
    )

    def initialize(self, ctx: AppContext) -> None:
        self.ctx = ctx
        self.accepted: dict[str, Any] = {}
        self._rejection: AppError | None = None
        self.connection: Connection | None = None
        self._seat: Seat | None = None
        self._pending_bytes = 0
        self._direct_frames: bool | None = None
        self._pong = False

    async def get(self, *args: Any, **kwargs: Any) -> None:
        refusal = handshake_refusal(self.request, self.ctx.settings)
        if refusal is not None:
            raise refusal
        try:
            self.accepted = await self._handshake(kwargs)
        except AppError as err:
            self._rejection = err
        await super().get(*args, **kwargs)

    async def _handshake(self, path_args: dict[str, Any]) -> dict[str, Any]:
        raw = {key: self.get_query_argument(key) for key in self.request.query_arguments}
        try:
            query = self.query_schema().load(raw)
        except marshmallow.ValidationError as err:
            raise ValidationFailed(
                f"invalid query: {field_errors(err.messages)}", fields=_as_fields(err.messages)
            ) from err
        token = socket_token(self.request, query.get("token"))
        principal = await authenticate_token(self.ctx, token)
        accepted = await self.authorize(principal, path_args)
        user = await users_repo.get_user(self.ctx.db, principal.user_id)
        if user is None:
            raise Unauthorized("invalid or expired token", code="invalid_token")
        identity = Identity(
            user_id=principal.user_id,
            display_name=user["display_name"],
            family_id=principal.family_id,
            token=token,
            expires_at=principal.expires_at,
        )
        return {**query, **accepted, "identity": identity}

    async def authorize(self, principal: Principal, path_args: dict[str, Any]) -> dict[str, Any]:
        """Check access to the resource named in the path; returns what `open()` needs."""
        raise NotImplementedError

    def admitted(self) -> bool:
        """First thing in `open()`: False, with the socket closed, if the handshake was refused
        (its 44xx code and reason) or the node is draining (1001: reconnect elsewhere)."""
        if self._rejection is not None:
            log.info(
                "ws.rejected",
                handler=type(self).__name__,
                code=self._rejection.code,
                reason=self._rejection.message,
            )
            self.close(*close_for(self._rejection))
            return False
        if self.ctx.draining:
            self.close(CloseCode.GOING_AWAY, CloseCode.GOING_AWAY.reason)
            return False
        self.set_nodelay(True)  # small frames; latency matters more than packet count
        return True

    # --- the connection (live/hub.py) ---------------------------------------------------------

    @property
    def hub(self) -> Hub[Any]:
        """The node's hub for this kind of socket."""
        raise NotImplementedError

    def make_connection(self) -> Connection:
        """The kind's connection for an admitted handshake (`self.accepted`)."""
        raise NotImplementedError

    def capped_room(self) -> str | None:
        """The room whose client cap this socket counts against (documents), if any."""
        return None

    def _take_seat(self) -> bool:
        """The node's socket caps (live/admission.py): False, with the socket closed (4429 too
        many sockets, 1013 document full), if this one is over."""
        identity: Identity = self.accepted["identity"]
        try:
            self._seat = self.ctx.admission.admit(
                identity.user_id, self.request.remote_ip or "?", self.capped_room()
            )
        except AppError as err:
            log.info("ws.refused", code=err.code, reason=err.message, user_id=identity.user_id)
            self.close(*close_for(err))
            return False
        return True

    def open(self, *args: Any, **kwargs: Any) -> None:
        if not self.admitted() or not self._take_seat():
            return
        self.connection = self.make_connection()
        self.hub.connect(self.connection)
        self.ctx.pinger.add(self)
        log.info(
            "ws.open",
            conn=self.connection.conn_id,
            kind=self.connection.kind,
            user_id=self.connection.user_id,
            path=self.request.path,
        )
        self._release_upgrade_request()

    def _release_upgrade_request(self) -> None:
        """Drop what only the handshake needed. Tornado keeps this handler, and the handler its
        upgrade request, for the socket's whole life, but reads neither the request's headers nor
        its arguments after `open()`, nor the 101 response's headers once they are written (nor
        do we: the connection holds what it needs). Held, they were ~3 KB of each idle socket's
        memory (issue 15, bench/FINDINGS.md), the access token among them. The request's path,
        method and address stay for log lines."""
        request = self.request
        # Emptied in place: Tornado's HTTP connection object holds the same headers object. By
        # its constructor, not `clear()`: popping keys one by one leaves its two dicts their
        # tables (~0.4 KB per socket).
        request.headers.__init__()  # type: ignore[misc]
        request.arguments.clear()
        request.query_arguments.clear()
        request.uri, request.query = request.path, ""
        # The HTTP/1.1 connection objects: the stream was detached from them at the upgrade
        # (the socket's protocol owns it), nothing else refers to them, and they still hold the
        # request line -- token included -- and the request's headers.
        request.connection = request.server_connection = None
        self.accepted = {}
        # Written with the 101 before open(); after the upgrade Tornado disables set_header & co.
        self._headers = tornado.httputil.HTTPHeaders()

    def on_message(self, message: str | bytes) -> Awaitable[None] | None:
        """Hand a frame to the connection. While the awaitable it may return is pending,
        Tornado reads no further frame from this socket: back-pressure (live/hub.py)."""
        connection = self.connection
        if connection is None:
            return None
        try:
            return connection.receive(message)
        except Exception as err:  # Tornado aborts the socket if on_message raises
            log.error("ws.receive_failed", conn=connection.conn_id, error=repr(err))
            return None

    def on_close(self) -> None:
        self.ctx.pinger.discard(self)
        if self._seat is not None:
            self._seat.release()
        if self.connection is None:
            return
        self.hub.disconnect(self.connection)
        log.info(
            "ws.close",
            conn=self.connection.conn_id,
            code=self.close_code,
            reason=self.close_reason,
        )

    def select_subprotocol(self, subprotocols: list[str]) -> str | None:
        return choose_subprotocol(subprotocols)

    def get_websocket_protocol(self) -> tornado.websocket.WebSocketProtocol | None:
        # An oversized frame is refused with a close frame the client can read (1009, not 1006).
        return lingering_protocol(self, super().get_websocket_protocol())

    def check_origin(self, origin: str) -> bool:
        return origin_allowed(self.ctx.settings, origin, self.request.headers.get("Host"))

    # --- live.pinger.Pingable: the node's one pinger instead of a Tornado task per socket -----

    def send_ping(self) -> None:
        self._pong = False
        with contextlib.suppress(tornado.websocket.WebSocketClosedError):
            self.ping(b"")

    def on_pong(self, data: bytes) -> None:
        self._pong = True

    def answered_ping(self) -> bool:
        return self._pong

    def ping_timed_out(self) -> None:
        self.close(reason="ping timed out")  # what Tornado's own pinger says

    # --- live.hub.Transport: what the connection calls ---------------------------------------

    def send(self, frame: bytes | str) -> None:
        """Write one frame now (the connection has checked the slow-reader bound).

        The hot path of fan-out (one call per peer per update batch): the frame is framed once for
        every peer and written to the socket directly (handlers/ws_wire.py; bench/FINDINGS.md
        §2.1-2.2 for what `write_message`'s coroutine + Task per frame and the per-peer framing
        cost). The public API is the fallback if Tornado's internals change.
        """
        connection = self.ws_connection
        if connection is None or connection.is_closing():
            return
        try:
            if self._direct(connection):
                ws_wire.write_wire(connection, ws_wire.wire_frame(frame))
            else:
                self._track(len(frame), self.write_message(frame, binary=isinstance(frame, bytes)))
        except (tornado.websocket.WebSocketClosedError, tornado.iostream.StreamClosedError):
            return

    def unsent_bytes(self) -> int:
        """Bytes written to this socket that the kernel has not taken yet (Tornado's own
        counters of its write buffer where present, else what `_track` counts)."""
        connection = self.ws_connection
        if connection is not None and self._direct(connection):
            return ws_wire.unsent_bytes(connection)
        return self._pending_bytes

    def _direct(self, connection: Any) -> bool:
        """Whether frames bypass Tornado's writers on this socket (decided once per socket)."""
        direct = self._direct_frames
        if direct is None:
            direct = self._direct_frames = ws_wire.AVAILABLE and ws_wire.supported(connection)
            if direct:
                ws_wire.lighten(connection)
        return direct

    def _track(self, size: int, future: Any) -> None:
        self._pending_bytes += size
        future.add_done_callback(lambda done: self._written(size, done))

    def _written(self, size: int, future: Any) -> None:
        self._pending_bytes -= size
        if not future.cancelled():
            future.exception()  # retrieved: a closed stream is expected, not worth a warning


def field_errors(messages: Any) -> str:
    """marshmallow's error messages as one human line: `since: Not a valid integer.`"""
    if isinstance(messages, dict):
        return "; ".join(f"{key}: {field_errors(value)}" for key, value in messages.items())
    if isinstance(messages, list):
        return " ".join(field_errors(m) for m in messages)
    return str(messages)


def _as_fields(messages: Any) -> dict[str, Any]:
    return messages if isinstance(messages, dict) else {"_schema": messages}
