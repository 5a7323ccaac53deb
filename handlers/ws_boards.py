"""`/ws/boards/<id>`: live board events and presence (thin transport adapter).

The handshake (handlers/ws_auth.py) authenticates the access JWT (`?token=`, `Authorization:
Bearer` or the `collab` subprotocol) and checks board view access before the upgrade; a refused
client is closed at once with 4401 bad token, 4403 may not view the board, 4404 no such board or
4400 bad query. Query: `since=<seq>` resumes after that board event sequence. Everything else is in
streams/board_feed.py.
"""

from __future__ import annotations

from typing import Any

import marshmallow
import structlog
from marshmallow import fields, validate

from core.errors import AppError
from handlers.base import parse_uuid
from handlers.routing import route
from handlers.ws_auth import AuthenticatedSocketHandler, Receiver
from services import policy
from services.auth_guard import Principal
from services.policy import Action, Resource
from streams.board_feed import CLOSE_INTERNAL, BoardConnection, BoardFeed

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


class BoardSocketHandler(AuthenticatedSocketHandler):
    query_schema = BoardSocketQuerySchema
    openapi = {
        "get": {
            "summary": "WebSocket upgrade: live board events and presence (docs/boards.md)",
            "query": BoardSocketQuerySchema,
            "status": 101,
            "auth": True,
        }
    }
    connection: BoardConnection | None = None

    @property
    def feed(self) -> BoardFeed:
        return self.ctx.services["board_feed"]

    async def authorize(self, principal: Principal, path_args: dict[str, Any]) -> dict[str, Any]:
        board_id = parse_uuid(path_args["board_id"], "board_id")
        await policy.require(
            self.ctx, principal.user_id, Action.BOARD_VIEW, Resource.board(board_id)
        )
        return {"board_id": board_id}

    async def open(self, *args: Any, **kwargs: Any) -> None:
        if not self.admitted():
            return
        self.connection = BoardConnection(
            self.feed, self.accepted["board_id"], self.accepted["identity"], _Transport(self)
        )
        try:
            await self.feed.join(self.connection, self.accepted["since"])
        except AppError as err:
            self.connection.close(err.ws_close_code, err.message)
        except Exception as err:
            log.exception("board_ws.join_failed", error=repr(err))
            self.connection.close(CLOSE_INTERNAL, "internal error")

    @property
    def receiver(self) -> Receiver | None:
        return self.connection

    def on_close(self) -> None:
        if self.connection is not None:
            self.connection.transport_closed()


ROUTES = [route("/ws/boards/{board_id}/", BoardSocketHandler)]
