"""Helpers shared by the board tests: a workspace with users per role, and board contents."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from typing import Any

from server.context import AppContext
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
