"""`/ws/inbox`: the caller's notifications and unread count, live (thin transport adapter).

The handshake (handlers/ws_auth.py) authenticates the access JWT (`?token=`, `Authorization:
Bearer` or the `collab` subprotocol) before the upgrade; a refused client is closed at once with
4401 (bad token) or 4400 (bad query). Query: `since=<stream seq>` resumes after that sequence.
Everything else is in live/inbox_feed.py.
"""

from __future__ import annotations

from typing import Any

import marshmallow
from marshmallow import fields, validate

from handlers.input_guard import MAX_STREAM_SEQ
from handlers.routing import route
from handlers.schemas.notifications import INBOX_FRAMES
from handlers.ws_auth import AuthenticatedSocketHandler
from live.inbox_feed import InboxConnection, InboxFeed
from services.auth_guard import Principal


class InboxSocketQuerySchema(marshmallow.Schema):
    token = fields.String(load_default=None)
    since = fields.Integer(
        load_default=None,
        allow_none=True,
        validate=validate.Range(min=0, max=MAX_STREAM_SEQ),
        metadata={"description": "resume after this COLLAB_EVENTS stream sequence"},
    )


class InboxSocketHandler(AuthenticatedSocketHandler):
    query_schema = InboxSocketQuerySchema
    openapi = {
        "get": {
            "summary": "WebSocket upgrade: my notifications and unread count, live and "
            "resumable (README: /ws/inbox)",
            "query": InboxSocketQuerySchema,
            "status": 101,
            "auth": True,
            "frames": INBOX_FRAMES,
        }
    }

    @property
    def hub(self) -> InboxFeed:
        return self.ctx.inbox_feed

    async def authorize(self, principal: Principal, path_args: dict[str, Any]) -> dict[str, Any]:
        return {}  # everyone signed in has an inbox: their own

    def make_connection(self) -> InboxConnection:
        accepted = self.accepted
        return InboxConnection(self.hub, accepted["identity"], self, since=accepted["since"])


ROUTES = [route("/ws/inbox/", InboxSocketHandler)]
