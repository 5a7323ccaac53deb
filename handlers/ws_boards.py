"""`/ws/boards/<id>`: live board events and presence (thin transport adapter).

Authentication (access JWT in `?token=`, `Authorization: Bearer` or the `collab` subprotocol) and
authorization (board view) run in `get()` before the upgrade. As on the document socket, a refused
client still gets the upgrade and then an immediate close that says why: 4401 bad token, 4403 may
not view the board, 4404 no such board, 4400 bad query (browsers cannot read the HTTP status of a
failed handshake). A forbidden `Origin` is refused with HTTP 403 (CSWSH).

Query: `since=<seq>` resumes after that board event sequence (see streams/board_feed.py).
"""

from __future__ import annotations

from typing import Any

import marshmallow
import structlog
import tornado.websocket
from marshmallow import fields, validate

from handlers.base import parse_uuid
from handlers.routing import route
from handlers.ws_auth import choose_subprotocol, origin_allowed, socket_token
from models.repo import users as users_repo
from server.context import AppContext
from services import policy
from services.auth_guard import authenticate_token
from services.errors import AppError, Unauthorized, ValidationFailed
from services.policy import Action, Resource
from streams.board_feed import CLOSE_GOING_AWAY, CLOSE_INTERNAL, BoardConnection, BoardFeed
from streams.session import Identity

log = structlog.get_logger("collab.ws")


class BoardSocketQuerySchema(marshmallow.Schema):
    token = fields.String(load_default=None)
    since = fields.Integer(load_default=None, allow_none=True, validate=validate.Range(min=0))


class _Transport:
    """The feed's view of the socket (kept apart so names cannot clash with Tornado's)."""

    def __init__(self, handler: BoardSocketHandler) -> None:
        self.handler = handler

    async def send_text(self, text: str) -> None:
        await self.handler.write_message(text)

    def close(self, code: int, reason: str) -> None:
        self.handler.close(code, reason)


class BoardSocketHandler(tornado.websocket.WebSocketHandler):
    openapi = {
        "get": {
            "summary": "WebSocket upgrade: live board events and presence (docs/boards.md)",
            "query": BoardSocketQuerySchema,
            "status": 101,
            "auth": True,
        }
    }

    def initialize(self, ctx: AppContext) -> None:
        self.ctx = ctx
        self.connection: BoardConnection | None = None
        self._rejection: AppError | None = None
        self._accepted: dict[str, Any] = {}

    @property
    def feed(self) -> BoardFeed:
        return self.ctx.services["board_feed"]

    # --- handshake -----------------------------------------------------------------------------

    async def get(self, *args: Any, **kwargs: Any) -> None:
        try:
            self._accepted = await self._authorize(kwargs["board_id"])
        except AppError as err:
            self._rejection = err
        await super().get(*args, **kwargs)

    async def _authorize(self, raw_board_id: str) -> dict[str, Any]:
        raw = {key: self.get_query_argument(key) for key in self.request.query_arguments}
        try:
            query = BoardSocketQuerySchema().load(raw)
        except marshmallow.ValidationError as err:
            raise ValidationFailed(f"invalid query: {err.messages}") from err
        token = socket_token(self.request, query["token"])
        principal = await authenticate_token(self.ctx, token)
        board_id = parse_uuid(raw_board_id, "board_id")
        await policy.require(
            self.ctx, principal.user_id, Action.BOARD_VIEW, Resource.board(board_id)
        )
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
        return {"board_id": board_id, "identity": identity, "since": query["since"]}

    def select_subprotocol(self, subprotocols: list[str]) -> str | None:
        return choose_subprotocol(subprotocols)

    def check_origin(self, origin: str) -> bool:
        return origin_allowed(self.ctx.settings, origin)

    # --- socket lifecycle ----------------------------------------------------------------------

    async def open(self, *args: Any, **kwargs: Any) -> None:
        if self._rejection is not None:
            log.info("board_ws.rejected", code=self._rejection.code)
            self.close(self._rejection.ws_close_code, self._rejection.message[:120])
            return
        if self.ctx.draining:
            self.close(CLOSE_GOING_AWAY, "server shutting down, reconnect")
            return
        self.set_nodelay(True)
        accepted = self._accepted
        self.connection = BoardConnection(
            self.feed, accepted["board_id"], accepted["identity"], _Transport(self)
        )
        try:
            await self.feed.join(self.connection, accepted["since"])
        except AppError as err:
            self.connection.close(err.ws_close_code, err.message)
        except Exception as err:
            log.exception("board_ws.join_failed", error=repr(err))
            self.connection.close(CLOSE_INTERNAL, "internal error")

    def on_message(self, message: str | bytes) -> None:
        if self.connection is None:
            return
        try:
            self.connection.receive(message)
        except Exception as err:  # Tornado aborts the socket if on_message raises
            log.error("board_ws.receive_failed", conn=self.connection.conn_id, error=repr(err))

    def on_close(self) -> None:
        if self.connection is not None:
            self.connection.transport_closed()


ROUTES = [route("/ws/boards/{board_id}/", BoardSocketHandler)]
