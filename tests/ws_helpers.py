"""Helpers shared by the workspace, member, invitation, policy and permission-cache tests."""

from __future__ import annotations

import asyncio
import json
import uuid
from dataclasses import dataclass
from typing import Any

from models.repo import users as users_repo
from server.context import AppContext
from services import permissions_cache, tokens

WORKSPACES = "/api/v1/workspaces/"


@dataclass(frozen=True)
class FastUser:
    id: str
    email: str
    display_name: str
    access_token: str


async def fast_user(ctx: AppContext, name: str = "user") -> FastUser:
    """A user with a valid access token, without the deliberately slow password hashing of
    registration (auth has its own tests). Tokens issued in this second stay valid."""
    email = f"{name}-{uuid.uuid4().hex[:10]}@example.com"
    user_id = str(
        await ctx.db.fetchval(
            "INSERT INTO users (email, password_hash, display_name, tokens_valid_after)"
            " VALUES ($1, 'not-a-hash', $2, now() - interval '1 minute') RETURNING id",
            email,
            name.title(),
        )
    )
    family_id = await users_repo.create_family(ctx.db, user_id)
    access = tokens.issue(ctx.settings, "access", user_id, family_id)
    return FastUser(user_id, email, name.title(), access.token)


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


async def workspace_with(
    api: Any, ctx: AppContext, *roles: str
) -> tuple[dict, dict[str, FastUser]]:
    """A workspace with an owner plus one user per extra role; users keyed by role."""
    owner = await fast_user(ctx, "owner")
    workspace = await create_workspace(api, owner)
    users = {"owner": owner}
    for role in roles:
        user = await fast_user(ctx, role)
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


class Collector:
    """Collects JSON messages of one NATS subject (core subscription: JetStream publishes reach
    it too) and waits for one matching a predicate, with a timeout instead of a sleep."""

    def __init__(self) -> None:
        self.messages: list[tuple[dict, dict]] = []
        self._arrived = asyncio.Event()
        self._sub: Any = None

    async def start(self, ctx: AppContext, subject: str) -> Collector:
        async def on_msg(msg: Any) -> None:
            self.messages.append((json.loads(msg.data), dict(msg.headers or {})))
            self._arrived.set()

        self._sub = await ctx.nats.nc.subscribe(subject, cb=on_msg)
        await ctx.nats.nc.flush()
        return self

    async def wait_for(self, predicate: Any, within_s: float = 2.0) -> tuple[dict, dict]:
        async with asyncio.timeout(within_s):
            while True:
                for item in self.messages:
                    if predicate(item[0]):
                        return item
                self._arrived.clear()
                await self._arrived.wait()

    async def stop(self) -> None:
        if self._sub is not None:
            await self._sub.unsubscribe()
