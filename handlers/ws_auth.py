"""What every WebSocket endpoint does the same way: find the access token, pick the subprotocol,
check the Origin, and refuse a handshake with a close code that says why (DESIGN.md §4).

The token comes from `?token=`, else `Authorization: Bearer`, else a JWT-shaped value offered in
`Sec-WebSocket-Protocol` (browsers can set neither headers nor, safely, URLs): the client offers
`["collab", <token>]` and the server selects `collab` (or echoes the token if that is all it
offered, because a browser requires one of its offers back).
"""

from __future__ import annotations

import re
from typing import Any

import marshmallow
import structlog
import tornado.httputil
import tornado.websocket

from models.repo import users as users_repo
from server.context import AppContext
from server.settings import Settings
from services.auth_guard import Principal, authenticate_token, bearer_token
from services.errors import AppError, Unauthorized, ValidationFailed
from streams.session import Identity

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


def origin_allowed(settings: Settings, origin: str) -> bool:
    """Tornado asks only for cross-origin browser requests (same host is always allowed)."""
    allowed = settings.ws_allowed_origins
    return "*" in allowed or origin.rstrip("/") in allowed


class AuthenticatedSocketHandler(tornado.websocket.WebSocketHandler):
    """Authenticates in `get()`, before the upgrade; subclasses add `authorize()`.

    A refused handshake is still upgraded and then closed at once with the error's 44xx code and
    reason (`open()` calls `refused()`): browsers cannot read the HTTP status of a failed
    handshake, and y-websocket-style clients stop reconnecting on 4400-4499. A forbidden Origin is
    the exception: HTTP 403 at the handshake (Tornado's cross-origin check, CSWSH).
    """

    query_schema: type[marshmallow.Schema]

    def initialize(self, ctx: AppContext) -> None:
        self.ctx = ctx
        self.accepted: dict[str, Any] = {}
        self._rejection: AppError | None = None

    async def get(self, *args: Any, **kwargs: Any) -> None:
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

    def refused(self) -> bool:
        """In `open()`: close a refused handshake with its code; True if it was refused."""
        if self._rejection is None:
            return False
        log.info("ws.rejected", code=self._rejection.code, path=type(self).__name__)
        self.close(self._rejection.ws_close_code, self._rejection.message[:120])
        return True

    def select_subprotocol(self, subprotocols: list[str]) -> str | None:
        return choose_subprotocol(subprotocols)

    def check_origin(self, origin: str) -> bool:
        return origin_allowed(self.ctx.settings, origin)
