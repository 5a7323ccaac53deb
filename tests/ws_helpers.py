"""Helpers shared by the workspace, member, invitation, policy and permission-cache tests."""

from __future__ import annotations

import uuid
from typing import Any

from server.context import AppContext
from services import permissions_cache

WORKSPACES = "/api/v1/workspaces/"


def ws_path(workspace_id: str, suffix: str = "") -> str:
    return f"{WORKSPACES}{workspace_id}/{suffix}"


async def create_workspace(api: Any, owner: Any, name: str | None = None) -> dict:
    name = name or f"Team {uuid.uuid4().hex[:8]}"
    response = await api.post(WORKSPACES, {"name": name}, token=owner.access_token)
    assert response.status == 201, response.body
    return response.body


async def invite(api: Any, workspace_id: str, inviter: Any, email: str, role: str) -> Any:
    return await api.post(
        ws_path(workspace_id, "invite/"), {"email": email, "role": role}, token=inviter.access_token
    )


async def add_member(api: Any, workspace_id: str, inviter: Any, user: Any, role: str) -> None:
    """Through the real invitation flow."""
    invited = await invite(api, workspace_id, inviter, user.email, role)
    assert invited.status == 201, invited.body
    accepted = await api.post(invited.body["accept_path"], token=user.access_token)
    assert accepted.status == 200, accepted.body


async def workspace_with(api: Any, make_user: Any, *roles: str) -> tuple[dict, dict[str, Any]]:
    """A workspace with an owner plus one user per extra role; users keyed by role."""
    owner = await make_user("owner")
    workspace = await create_workspace(api, owner)
    users = {"owner": owner}
    for role in roles:
        user = await make_user(role)
        await add_member(api, workspace["id"], owner, user, role)
        users[role] = user
    return workspace, users


# Boards and documents are created straight in the tables: their endpoints belong to other issues.


async def insert_board(
    ctx: AppContext, workspace_id: str, *, private: bool = False, name: str = "Board"
) -> str:
    return str(
        await ctx.db.fetchval(
            "INSERT INTO boards (workspace_id, name, is_private) VALUES ($1, $2, $3) RETURNING id",
            workspace_id,
            name,
            private,
        )
    )


async def insert_document(
    ctx: AppContext,
    workspace_id: str,
    *,
    board_id: str | None = None,
    private: bool = False,
    title: str = "Doc",
) -> str:
    return str(
        await ctx.db.fetchval(
            "INSERT INTO documents (workspace_id, board_id, title, is_private)"
            " VALUES ($1, $2, $3, $4) RETURNING id",
            workspace_id,
            board_id,
            title,
            private,
        )
    )


async def grant(
    ctx: AppContext, workspace_id: str, kind: str, resource_id: str, user_id: str, role: str
) -> None:
    """A board or document grant, invalidated the way the boards/documents services must."""
    table, column = (
        ("board_members", "board_id")
        if kind == "board"
        else (
            "document_grants",
            "document_id",
        )
    )
    await ctx.db.execute(
        f"INSERT INTO {table} ({column}, user_id, role) VALUES ($1, $2, $3)"
        f" ON CONFLICT ({column}, user_id) DO UPDATE SET role = EXCLUDED.role",
        resource_id,
        user_id,
        role,
    )
    await permissions_cache.invalidate_user(
        ctx, user_id, workspace_id, resource_type=kind, resource_id=resource_id
    )
