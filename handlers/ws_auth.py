"""What every WebSocket endpoint does the same way: find the access token, pick the subprotocol,
check the Origin (DESIGN.md §4).

The token comes from `?token=`, else `Authorization: Bearer`, else a JWT-shaped value offered in
`Sec-WebSocket-Protocol` (browsers can set neither headers nor, safely, URLs): the client offers
`["collab", <token>]` and the server selects `collab` (or echoes the token if that is all it
offered, because a browser requires one of its offers back).
"""

from __future__ import annotations

import re

import tornado.httputil

from server.settings import Settings
from services.auth_guard import bearer_token
from services.errors import Unauthorized

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
