"""Helpers for the real-time document tests (tests/test_ws_*.py).

Documents, workspaces and roles are made with SQL (fast, no REST dependency); tokens are minted
directly (tests/ws_helpers.fast_user). `RawSocket` is a minimal WebSocket client for what stock
Yjs clients cannot do: JSON-envelope sessions, malformed frames, floods, slow readers.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import json
import uuid
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any

import pycrdt
import tornado.httpclient
import tornado.websocket

from server.context import AppContext
from server.runner import RunningNode, start_node
from server.settings import Settings
from tests.ws_helpers import FastUser, fast_user
from tests.yjs_client import YjsNodeClients

WAIT_S = 10.0
CONVERGE_TIMEOUT_S = 15.0

# A workspace role, plus an optional explicit document grant, per test role name.
ROLE_SETUP: dict[str, tuple[str | None, str | None]] = {
    "owner": ("owner", None),
    "editor": ("member", None),
    "member": ("member", None),
    "viewer": ("guest", "viewer"),
    "commenter": ("guest", "commenter"),
    "guest": ("guest", None),
    "outsider": (None, None),
}


@dataclass
class DocSetup:
    doc_id: str
    workspace_id: str
    users: dict[str, FastUser]


async def document_with(ctx: AppContext, *roles: str) -> DocSetup:
    """A document in a fresh workspace, with one user per role (the owner is always there)."""
    owner = await fast_user(ctx, "owner")
    workspace_id = str(
        await ctx.db.fetchval(
            "INSERT INTO workspaces (name, slug, created_by) VALUES ('W', $1, $2) RETURNING id",
            f"ws-{uuid.uuid4().hex}",
            owner.id,
        )
    )
    await set_member(ctx, workspace_id, owner.id, "owner")
    doc_id = str(
        await ctx.db.fetchval(
            "INSERT INTO documents (workspace_id, title, created_by) VALUES ($1, 'Doc', $2)"
            " RETURNING id",
            workspace_id,
            owner.id,
        )
    )
    users = {"owner": owner}
    for role in roles:
        if role == "owner":
            continue
        user = await fast_user(ctx, role)
        workspace_role, grant = ROLE_SETUP[role]
        if workspace_role is not None:
            await set_member(ctx, workspace_id, user.id, workspace_role)
        if grant is not None:
            await set_grant(ctx, doc_id, user.id, grant)
        users[role] = user
    return DocSetup(doc_id, workspace_id, users)


async def set_member(ctx: AppContext, workspace_id: str, user_id: str, role: str) -> None:
    await ctx.db.execute(
        "INSERT INTO workspace_members (workspace_id, user_id, role) VALUES ($1, $2, $3)"
        " ON CONFLICT (workspace_id, user_id) DO UPDATE SET role = EXCLUDED.role",
        workspace_id,
        user_id,
        role,
    )


async def set_grant(ctx: AppContext, doc_id: str, user_id: str, role: str | None) -> None:
    if role is None:
        await ctx.db.execute(
            "DELETE FROM document_grants WHERE document_id = $1 AND user_id = $2", doc_id, user_id
        )
        return
    await ctx.db.execute(
        "INSERT INTO document_grants (document_id, user_id, role) VALUES ($1, $2, $3)"
        " ON CONFLICT (document_id, user_id) DO UPDATE SET role = EXCLUDED.role",
        doc_id,
        user_id,
        role,
    )


def ws_base(port: int) -> str:
    """The y-websocket provider's serverUrl: it appends `/<doc_id>`."""
    return f"ws://127.0.0.1:{port}/ws/documents"


def text_update(doc: pycrdt.Doc, text: str, key: str = "text") -> bytes:
    """Append `text` to a pycrdt doc's text root and return the delta as a Yjs v1 update."""
    before = doc.get_state()
    root = doc.get(key, type=pycrdt.Text)
    root.insert(len(str(root)), text)
    return doc.get_update(before)


def text_of(update: bytes, key: str = "text") -> str:
    doc = pycrdt.Doc()
    if update:
        doc.apply_update(update)
    return str(doc.get(key, type=pycrdt.Text))


class RawSocket:
    """A WebSocket client that records every message, with waits instead of sleeps."""

    def __init__(self, conn: tornado.websocket.WebSocketClientConnection) -> None:
        self.conn = conn
        self.messages: list[str | bytes] = []
        self.closed = asyncio.Event()
        self._arrived = asyncio.Condition()
        self._reader = asyncio.ensure_future(self._read())

    @classmethod
    async def open(
        cls,
        port: int,
        doc_id: str,
        token: str | None = None,
        *,
        query: str = "",
        headers: dict[str, str] | None = None,
        subprotocols: list[str] | None = None,
        max_message_size: int = 64 * 1024 * 1024,
    ) -> RawSocket:
        params = [p for p in (f"token={token}" if token else "", query) if p]
        url = f"ws://127.0.0.1:{port}/ws/documents/{doc_id}" + (
            "?" + "&".join(params) if params else ""
        )
        request = tornado.httpclient.HTTPRequest(url, headers=headers or {})
        conn = await tornado.websocket.websocket_connect(
            request, subprotocols=subprotocols, max_message_size=max_message_size
        )
        return cls(conn)

    @classmethod
    async def json(cls, port: int, doc_id: str, token: str, query: str = "") -> RawSocket:
        return await cls.open(
            port, doc_id, token, query="&".join(p for p in ("format=json", query) if p)
        )

    async def _read(self) -> None:
        while True:
            message = await self.conn.read_message()
            async with self._arrived:
                if message is None:
                    self.closed.set()
                else:
                    self.messages.append(message)
                self._arrived.notify_all()
            if message is None:
                return

    @property
    def close_code(self) -> int | None:
        return self.conn.close_code

    @property
    def close_reason(self) -> str | None:
        return self.conn.close_reason

    def json_messages(self) -> list[dict[str, Any]]:
        return [json.loads(m) for m in self.messages if isinstance(m, str)]

    async def wait_for(
        self, predicate: Callable[[str | bytes], bool], timeout_s: float = WAIT_S, start: int = 0
    ) -> str | bytes:
        """The first message (from index `start`) matching `predicate`."""

        async def find() -> str | bytes:
            async with self._arrived:
                while True:
                    for message in self.messages[start:]:
                        if predicate(message):
                            return message
                    if self.closed.is_set():
                        raise AssertionError(
                            f"socket closed ({self.close_code} {self.close_reason}) before match;"
                            f" got {self.messages[-5:]!r}"
                        )
                    await self._arrived.wait()

        return await asyncio.wait_for(find(), timeout_s)

    async def wait_json(
        self, predicate: Callable[[dict[str, Any]], bool], timeout_s: float = WAIT_S, start: int = 0
    ) -> dict[str, Any]:
        def matches(message: str | bytes) -> bool:
            return isinstance(message, str) and predicate(json.loads(message))

        return json.loads(await self.wait_for(matches, timeout_s, start))

    async def wait_type(self, kind: str, timeout_s: float = WAIT_S, start: int = 0) -> dict:
        return await self.wait_json(lambda m: m.get("type") == kind, timeout_s, start)

    async def wait_closed(self, timeout_s: float = WAIT_S) -> int | None:
        await asyncio.wait_for(self.closed.wait(), timeout_s)
        return self.close_code

    async def send_json(self, message: dict[str, Any]) -> None:
        await self.conn.write_message(json.dumps(message))

    async def send(self, message: str | bytes) -> None:
        await self.conn.write_message(message, binary=isinstance(message, bytes))

    async def operation(self, msg_id: str, update: bytes, version: int | None = None) -> None:
        await self.send_json(
            {
                "type": "operation",
                "id": msg_id,
                "data": {
                    "operation": {"type": "update", "payload": update.hex(), "client_id": 1},
                    "version": version,
                },
            }
        )

    async def ack(self, msg_id: str, timeout_s: float = WAIT_S) -> dict[str, Any]:
        return await self.wait_json(
            lambda m: m.get("id") == msg_id and m.get("type") in ("ack", "error"), timeout_s
        )

    def close(self, code: int | None = None) -> None:
        self.conn.close(code)

    async def aclose(self) -> None:
        if not self.closed.is_set():
            self.conn.close()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.closed.wait(), WAIT_S)
        self._reader.cancel()


@contextlib.asynccontextmanager
async def second_node(settings: Settings) -> AsyncIterator[RunningNode]:
    """Another node (in this process) on the same Postgres, NATS and Redis; stopped on exit."""
    node = await start_node(
        dataclasses.replace(settings, node_id=f"n2-{uuid.uuid4().hex[:6]}", port=0)
    )
    try:
        yield node
    finally:
        await node.stop()


async def converged(
    clients: YjsNodeClients, editors: dict[str, int], names: list[str]
) -> list[dict[str, Any]]:
    """Wait until every named client has every editor's last update; return their states.

    Deletions do not advance a state vector, so covering an editor's clock does not prove its
    trailing deletions arrived. Each editor therefore ends with a marker insert: one socket's
    updates are published and fanned out in order, so whoever has the marker has everything
    before it.
    """
    target: dict[int, int] = {}
    for name, client_id in editors.items():
        await clients.map_set(name, f"done-{client_id}", True, key="markers")
        target[client_id] = (await clients.state(name))["state_vector_map"][str(client_id)]
    return [await clients.wait_state_vector(n, target, CONVERGE_TIMEOUT_S) for n in names]
