"""`/ws/documents/<id>`: the real-time document socket (thin transport adapter).

The handshake (handlers/ws_auth.py, shared with the board socket) authenticates the access JWT
(`?token=`, `Authorization: Bearer` or the `collab` subprotocol) and checks document view access
before the upgrade; a refused client still gets the upgrade and then an immediate close with a 44xx
code and a reason, split like the REST policy (`policy.require`): 4401 bad token, 4404 no such
document or not a member of its workspace, 4403 a workspace member who may not view it, 4400 bad
query. A forbidden `Origin` is refused with HTTP 403 at the handshake (CSWSH; Tornado's
cross-origin check).

Everything protocol-related lives in live/session.py; moving frames is the shared socket base
(handlers/ws_auth.py), limits and the slow-reader rule are the socket hub's (live/hub.py).
"""

from __future__ import annotations

from typing import Any

import marshmallow
from marshmallow import fields, validate

from handlers.base import parse_uuid
from handlers.input_guard import MAX_STREAM_SEQ
from handlers.routing import route
from handlers.ws_auth import AuthenticatedSocketHandler
from live.rooms import RoomManager
from live.session import JsonSession, Session, YjsSession
from services import policy
from services.auth_guard import Principal
from services.policy import Action, Resource


class SocketQuerySchema(marshmallow.Schema):
    token = fields.String(load_default=None)
    format = fields.String(load_default="yjs", validate=validate.OneOf(["yjs", "json"]))
    since = fields.Integer(
        load_default=None, allow_none=True, validate=validate.Range(min=0, max=MAX_STREAM_SEQ)
    )
    # The document's JSON events (comment threads) as text frames: always with `format=json`;
    # y-websocket sockets opt in (a stock provider cannot read text frames).
    events = fields.Boolean(load_default=None, allow_none=True)
    events_since = fields.Integer(
        load_default=None, allow_none=True, validate=validate.Range(min=0, max=MAX_STREAM_SEQ)
    )


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

    @property
    def hub(self) -> RoomManager:
        return self.ctx.rooms

    async def authorize(self, principal: Principal, path_args: dict[str, Any]) -> dict[str, Any]:
        doc_id = parse_uuid(path_args["doc_id"], "doc_id")
        access = await policy.require(
            self.ctx, principal.user_id, Action.DOCUMENT_VIEW, Resource.document(doc_id)
        )
        return {"doc_id": doc_id, "access": access}

    def capped_room(self) -> str | None:
        return str(self.accepted["doc_id"])

    def make_connection(self) -> Session:
        accepted = self.accepted
        session_class = JsonSession if accepted["format"] == "json" else YjsSession
        extra = {"since": accepted["since"]} if session_class is JsonSession else {}
        events = accepted["events"]
        return session_class(
            conn_id=self.hub.new_conn_id(),
            doc_id=accepted["doc_id"],
            identity=accepted["identity"],
            access=accepted["access"],
            transport=self,
            deps=self.hub.deps(),
            events=(session_class is JsonSession) if events is None else events,
            events_since=accepted["events_since"],
            **extra,
        )


ROUTES = [route("/ws/documents/{doc_id}/", DocumentSocketHandler)]
