"""Helpers shared by the comment test modules: a document and a card with users per role."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from server.context import AppContext
from tests.board_helpers import create_board, create_card, create_list
from tests.documents_support import create, join, make_workspace
from tests.ws_helpers import FastUser, fast_user, grant

THREADS = "/api/v1/threads/"
COMMENTS = "/api/v1/comments/"


def body(*parts: Any) -> dict[str, Any]:
    """A comment body of one paragraph: strings become text nodes, dicts are kept as nodes."""
    nodes = [{"type": "text", "text": p} if isinstance(p, str) else p for p in parts]
    return {"type": "doc", "content": [{"type": "paragraph", "content": nodes}]}


def mention(user_id: str) -> dict[str, str]:
    return {"type": "mention", "user_id": user_id}


@dataclass
class World:
    """A workspace with a document and a card, and users by effective role on both.

    Roles: `owner`, `admin` (managers), `editor` (a Member: editor by default), `commenter` and
    `viewer` (Guests with that grant on the document and the board), `guest` (a Guest without a
    grant: 403), `outsider` (not in the workspace: 404).
    """

    workspace_id: str
    doc_id: str
    board_id: str
    card_id: str
    users: dict[str, FastUser]

    def token(self, role: str) -> str:
        return self.users[role].access_token

    def doc_threads(self) -> str:
        return f"/api/v1/documents/{self.doc_id}/threads/"

    def card_threads(self) -> str:
        return f"/api/v1/cards/{self.card_id}/threads/"


ROLES = ("owner", "admin", "editor", "commenter", "viewer", "guest", "outsider")


async def comment_world(api: Any, ctx: AppContext) -> World:
    owner = await fast_user(ctx, "owner")
    workspace_id = await make_workspace(api, owner)
    users = {"owner": owner}
    for role, ws_role in (
        ("admin", "admin"),
        ("editor", "member"),
        ("commenter", "guest"),
        ("viewer", "guest"),
        ("guest", "guest"),
    ):
        users[role] = await fast_user(ctx, role)
        await join(ctx, workspace_id, users[role], ws_role)
    users["outsider"] = await fast_user(ctx, "outsider")
    doc = await create(api, owner, workspace_id, title="Spec")
    board = await create_board(api, owner, workspace_id)
    card = await create_card(api, owner, (await create_list(api, owner, board["id"]))["id"])
    for role in ("commenter", "viewer"):
        await grant(ctx, workspace_id, "document", doc["id"], users[role].id, role)
        await grant(ctx, workspace_id, "board", board["id"], users[role].id, role)
    return World(workspace_id, doc["id"], board["id"], card["id"], users)


async def start_thread(api: Any, path: str, token: str, text: str = "first", **extra: Any) -> dict:
    created = await api.post(path, {"body": body(text), **extra}, token=token)
    assert created.status == 201, created.body
    return created.body
