"""What every WebSocket endpoint does the same way: find the access token, pick the subprotocol,
check the Origin, and refuse a handshake with a close code that says why (DESIGN.md §4).

The token comes from `?token=`, else `Authorization: Bearer`, else a JWT-shaped value offered in
`Sec-WebSocket-Protocol` (browsers can set neither headers nor, safely, URLs): the client offers
`["collab", <token>]` and the server selects `collab` (or echoes the token if that is all it
offered, because a browser requires one of its offers back).
"""

from __future__ import annotations

import re
import urllib.parse
from typing import Any, Protocol

import marshmallow
import structlog
import tornado.httputil
import tornado.websocket

from core.errors import AppError, Forbidden, Unauthorized, UpgradeRequired, ValidationFailed
from handlers.base import JsonErrors
from models.repo import users as users_repo
from server.context import AppContext
from server.settings import Settings
from services.auth_guard import Principal, authenticate_token, bearer_token
from streams.session import Identity

log = structlog.get_logger("collab.ws")

JWT_PATTERN = re.compile(r"^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*$")
SUBPROTOCOL = "collab"
CLOSE_GOING_AWAY = 1001  # the node is draining: clients reconnect (to another node) and resync


class Receiver(Protocol):
    """What an open socket hands its frames to (a document session, a board connection)."""

    conn_id: str

    def receive(self, message: str | bytes) -> None: ...


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
    """Authenticates in `get()`, before the upgrade; subclasses add `authorize()`, start with
    `if not self.admitted(): return` in `open()`, and expose what takes their frames as `receiver`.

    A refused handshake is still upgraded and then closed at once with the error's 44xx code and
    reason (`open()` calls `admitted()`): browsers cannot read the HTTP status of a failed
    handshake, and y-websocket-style clients stop reconnecting on 4400-4499. Two exceptions answer
    over HTTP with the JSON error body: a GET that is not an upgrade (426) and a forbidden Origin
    (403, CSWSH).
    """

    query_schema: type[marshmallow.Schema]

    def initialize(self, ctx: AppContext) -> None:
        self.ctx = ctx
        self.accepted: dict[str, Any] = {}
        self._rejection: AppError | None = None

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
            raise ValidationFailed(f"invalid query: {err.messages}") from err
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
            self.close(self._rejection.ws_close_code, self._rejection.message[:120])
            return False
        if self.ctx.draining:
            self.close(CLOSE_GOING_AWAY, "server shutting down, reconnect")
            return False
        self.set_nodelay(True)  # small frames; latency matters more than packet count
        return True

    @property
    def receiver(self) -> Receiver | None:
        """The object `open()` attached to take this socket's frames (None until then)."""
        return None

    def on_message(self, message: str | bytes) -> None:
        receiver = self.receiver
        if receiver is None:
            return
        try:
            receiver.receive(message)
        except Exception as err:  # Tornado aborts the socket if on_message raises
            log.error(
                "ws.receive_failed",
                handler=type(self).__name__,
                conn=receiver.conn_id,
                error=repr(err),
            )

    def select_subprotocol(self, subprotocols: list[str]) -> str | None:
        return choose_subprotocol(subprotocols)

    def check_origin(self, origin: str) -> bool:
        return origin_allowed(self.ctx.settings, origin, self.request.headers.get("Host"))
