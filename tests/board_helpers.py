"""Helpers shared by the board tests: a workspace with users per role, and board contents."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import json
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import tornado.httpclient
import tornado.websocket

from server.context import AppContext
from tests.conftest import Api
from tests.ws_helpers import FastUser, add_member, fast_user, workspace_with

BOARDS = "/api/v1/boards/"


def board_path(board_id: str, suffix: str = "") -> str:
    return f"{BOARDS}{board_id}/{suffix}"


@dataclass
class BoardWorld:
    """A workspace, a board made by its owner and users by role on it.

    Roles: `owner` (workspace owner), `member` (workspace member: editor by default), `viewer`
    (workspace member with a viewer grant), `guest_viewer` (guest with a viewer grant), `guest`
    (guest without a grant), `outsider` (not in the workspace).
    """

    workspace: dict
    board: dict
    users: dict[str, FastUser]
    lists: list[dict] = field(default_factory=list)

    @property
    def board_id(self) -> str:
        return self.board["id"]

    def token(self, role: str) -> str:
        return self.users[role].access_token


async def board_world(api: Any, ctx: AppContext, *, private: bool = False) -> BoardWorld:
    workspace, users = await workspace_with(api, ctx, "member", "guest")
    viewer = await fast_user(ctx, "viewer")
    guest_viewer = await fast_user(ctx, "guestviewer")
    await add_member(api, workspace["id"], users["owner"], viewer, "member")
    await add_member(api, workspace["id"], users["owner"], guest_viewer, "guest")
    users["viewer"] = viewer
    users["guest_viewer"] = guest_viewer
    users["outsider"] = await fast_user(ctx, "outsider")
    board = await create_board(api, users["owner"], workspace["id"], is_private=private)
    for role in ("viewer", "guest_viewer"):
        granted = await api.put(
            board_path(board["id"], f"members/{users[role].id}/"),
            {"role": "viewer"},
            token=users["owner"].access_token,
        )
        assert granted.status == 200, granted.body
    return BoardWorld(workspace, board, users)


async def create_board(api: Any, user: Any, workspace_id: str, **fields: Any) -> dict:
    body = {"workspace_id": workspace_id, "name": f"Board {uuid.uuid4().hex[:6]}", **fields}
    response = await api.post(BOARDS, body, token=user.access_token)
    assert response.status == 201, response.body
    return response.body


async def create_list(api: Any, user: Any, board_id: str, name: str = "List", **kw: Any) -> dict:
    response = await api.post(
        board_path(board_id, "lists/"), {"name": name, **kw}, token=user.access_token
    )
    assert response.status == 201, response.body
    return response.body


async def create_card(api: Any, user: Any, list_id: str, title: str = "Card", **kw: Any) -> dict:
    response = await api.post(
        f"/api/v1/lists/{list_id}/cards/", {"title": title, **kw}, token=user.access_token
    )
    assert response.status == 201, response.body
    return response.body


async def card_titles(api: Any, user: Any, board_id: str) -> dict[str, list[str]]:
    """List name → card titles in display order."""
    board = await api.get(board_path(board_id), token=user.access_token)
    assert board.status == 200, board.body
    return {lst["name"]: [c["title"] for c in lst["cards"]] for lst in board.body["lists"]}


# --- WebSocket clients and a second node -------------------------------------------------------

WAIT_S = 5.0


class BoardSocket:
    """A test client of `/ws/boards/<id>`: reads JSON frames, waits for one with a timeout."""

    def __init__(self, conn: Any) -> None:
        self.conn = conn
        self.frames: list[dict] = []

    @classmethod
    async def connect(
        cls,
        port: int,
        board_id: str,
        token: str | None,
        *,
        since: int | None = None,
        query: str = "",
        headers: dict[str, str] | None = None,
        subprotocols: list[str] | None = None,
    ) -> BoardSocket:
        params = [p for p in (query, f"token={token}" if token else "") if p]
        if since is not None:
            params.append(f"since={since}")
        url = f"ws://127.0.0.1:{port}/ws/boards/{board_id}/" + (
            "?" + "&".join(params) if params else ""
        )
        request = tornado.httpclient.HTTPRequest(url, headers=headers or {})
        conn = await tornado.websocket.websocket_connect(request, subprotocols=subprotocols)
        return cls(conn)

    async def next(self, predicate: Any = None, within_s: float = WAIT_S) -> dict:
        """The next frame (matching `predicate`); frames skipped on the way are kept."""
        async with asyncio.timeout(within_s):
            while True:
                raw = await self.conn.read_message()
                if raw is None:
                    raise ConnectionError(
                        f"closed: {self.conn.close_code} {self.conn.close_reason}"
                    )
                frame = json.loads(raw)
                self.frames.append(frame)
                if predicate is None or predicate(frame):
                    return frame

    async def ready(self) -> dict:
        return await self.next(lambda f: f["type"] == "ready")

    async def event(self, event_type: str | None = None) -> dict:
        frame = await self.next(
            lambda f: f["type"] == "event" and event_type in (None, f["event"]["type"])
        )
        return frame["event"]

    async def closed(self, within_s: float = WAIT_S) -> tuple[int | None, str | None]:
        async with asyncio.timeout(within_s):
            while await self.conn.read_message() is not None:
                pass
        return self.conn.close_code, self.conn.close_reason

    def close(self) -> None:
        self.conn.close()


class _NodeClient:
    """`fetch(path)` against another node, like pytest-tornado's `http_server_client`."""

    def __init__(self, port: int) -> None:
        self.base = f"http://127.0.0.1:{port}"
        self.http = tornado.httpclient.AsyncHTTPClient(force_instance=True)

    async def fetch(self, path: str, **kwargs: Any) -> Any:
        return await self.http.fetch(self.base + path, **kwargs)


@contextlib.asynccontextmanager
async def second_node(settings: Any, **overrides: Any) -> AsyncIterator[tuple[Any, Api]]:
    """Another node on the same stack (its own context, port and JetStream consumers)."""
    from server.runner import start_node

    node_settings = dataclasses.replace(
        settings, node_id=f"n2-{uuid.uuid4().hex[:6]}", port=0, **overrides
    )
    node = await start_node(node_settings)
    try:
        yield node, Api(_NodeClient(node.port), node.port)
    finally:
        if not node.ctx.draining:  # the test may have stopped it itself
            await node.stop()
