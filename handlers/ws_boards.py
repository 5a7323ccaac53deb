"""`/ws/boards/<id>`: live board events and presence (thin transport adapter).

The handshake (handlers/ws_auth.py) authenticates the access JWT (`?token=`, `Authorization:
Bearer` or the `collab` subprotocol) and checks board view access before the upgrade; a refused
client is closed at once with 4401 bad token, 4403 may not view the board, 4404 no such board or
4400 bad query. Query: `since=<seq>` resumes after that board event sequence. Everything else is in
live/board_feed.py.
"""

from __future__ import annotations

from typing import Any

import marshmallow
from marshmallow import fields, validate

from handlers.base import parse_uuid
from handlers.input_guard import MAX_STREAM_SEQ
from handlers.routing import route
from handlers.ws_auth import AuthenticatedSocketHandler
from live.board_feed import BoardConnection, BoardFeed
from services import policy
from services.auth_guard import Principal
from services.policy import Action, Resource


class BoardSocketQuerySchema(marshmallow.Schema):
    token = fields.String(load_default=None)
    since = fields.Integer(
        load_default=None, allow_none=True, validate=validate.Range(min=0, max=MAX_STREAM_SEQ)
    )


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

    @property
    def hub(self) -> BoardFeed:
        return self.ctx.board_feed

    async def authorize(self, principal: Principal, path_args: dict[str, Any]) -> dict[str, Any]:
        board_id = parse_uuid(path_args["board_id"], "board_id")
        access = await policy.require(
            self.ctx, principal.user_id, Action.BOARD_VIEW, Resource.board(board_id)
        )
        return {"board_id": board_id, "access": access}

    def make_connection(self) -> BoardConnection:
        accepted = self.accepted
        return BoardConnection(
            self.hub,
            accepted["board_id"],
            accepted["identity"],
            self,
            workspace_id=accepted["access"].workspace_id,
            since=accepted["since"],
        )


ROUTES = [route("/ws/boards/{board_id}/", BoardSocketHandler)]
