"""Helpers shared by the notification tests: drafts and `notify` in a real unit of work."""

from __future__ import annotations

import asyncio
from typing import Any
from uuid import UUID

import tornado.websocket

from services import notifications
from services.notifications import NotificationDraft
from services.unit_of_work import unit_of_work
from tests.board_helpers import BoardSocket
from tests.ws_helpers import workspace_with

INBOX = "/api/v1/notifications/"


def draft(recipient: Any, actor: Any, workspace_id: str, **extra: Any) -> NotificationDraft:
    return NotificationDraft(
        recipient_id=UUID(recipient.id),
        kind=extra.pop("kind", notifications.DOCUMENT_MENTION),
        actor_id=None if actor is None else UUID(actor.id),
        workspace_id=UUID(workspace_id),
        **extra,
    )


async def notify(ctx: Any, d: NotificationDraft) -> UUID | None:
    async with unit_of_work(ctx) as uow:
        return await notifications.notify(uow, d)


async def rows_of(ctx: Any, user_id: str) -> list:
    return await ctx.db.fetch(
        "SELECT * FROM notifications WHERE recipient_id = $1 ORDER BY created_at", user_id
    )


class InboxSocket(BoardSocket):
    """A test client of `/ws/inbox` (the board client's frame reading and waiting)."""

    @classmethod
    async def open(
        cls,
        port: int,
        token: str | None,
        *,
        since: int | None = None,
        query: str = "",
        subprotocols: list[str] | None = None,
    ) -> InboxSocket:
        params = [p for p in (query, f"token={token}" if token else "") if p]
        if since is not None:
            params.append(f"since={since}")
        url = f"ws://127.0.0.1:{port}/ws/inbox/" + ("?" + "&".join(params) if params else "")
        conn = await tornado.websocket.websocket_connect(url, subprotocols=subprotocols)
        return cls(conn)

    async def frame(self, event_type: str) -> dict:
        """The next event frame of that type (with its `seq`)."""
        return await self.next(lambda f: f["type"] == "event" and f["event"]["type"] == event_type)


async def workspace_with_empty_inboxes(api: Any, ctx: Any, *roles: str) -> tuple[dict, dict]:
    """`workspace_with`, then the `workspace.invited` notifications its invitations sent are
    dropped: these tests count from an empty inbox."""
    workspace, users = await workspace_with(api, ctx, *roles)
    await ctx.db.execute(
        "DELETE FROM notifications WHERE workspace_id = $1 AND kind = 'workspace.invited'",
        workspace["id"],
    )
    return workspace, users


async def two_open_transactions(ctx: Any, first_steps: list, second_steps: list) -> None:
    """Run two units of work step by step, alternating (first[0], second[0], first[1], …), both
    open until every step ran, then commit both."""
    turns = [asyncio.Event() for _ in range(len(first_steps) + len(second_steps) + 1)]
    turns[0].set()

    async def run(steps: list, offset: int) -> None:
        async with unit_of_work(ctx) as uow:
            for i, step in enumerate(steps):
                await turns[2 * i + offset].wait()
                await asyncio.wait_for(step(uow), 5)
                turns[2 * i + offset + 1].set()
            await turns[-1].wait()

    await asyncio.wait_for(asyncio.gather(run(first_steps, 0), run(second_steps, 1)), 15)
