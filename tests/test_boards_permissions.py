"""Permission matrix: every board endpoint × (outsider, guest without grant, guest with a viewer
grant, member with a viewer grant, member, owner). Denied calls change nothing."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest

from tests.board_helpers import BOARDS, BoardWorld, board_path, board_world, create_board

ROLES = ("outsider", "guest", "guest_viewer", "viewer", "member", "owner")
# The minimum role each level needs (services/boards.py docstring).
ALLOWED = {
    "view": {"guest_viewer", "viewer", "member", "owner"},
    "edit": {"member", "owner"},
    "manage": {"owner"},
}


@dataclass(frozen=True)
class Case:
    level: str
    method: str
    path: Callable[[dict], str]
    body: Callable[[dict], Any] = lambda o: None
    status: int = 200


CASES: dict[str, Case] = {
    "get board": Case("view", "GET", lambda o: board_path(o["board"])),
    "list members": Case("view", "GET", lambda o: board_path(o["board"], "members/")),
    "get card": Case("view", "GET", lambda o: f"/api/v1/cards/{o['card']}/"),
    "rename board": Case(
        "edit", "PATCH", lambda o: board_path(o["board"]), lambda o: {"name": "n"}
    ),
    "create list": Case(
        "edit", "POST", lambda o: board_path(o["board"], "lists/"), lambda o: {"name": "n"}, 201
    ),
    "rename list": Case(
        "edit", "PATCH", lambda o: f"/api/v1/lists/{o['list']}/", lambda o: {"name": "n"}
    ),
    "move list": Case("edit", "POST", lambda o: f"/api/v1/lists/{o['list']}/move/", lambda o: {}),
    "archive list": Case("edit", "POST", lambda o: f"/api/v1/lists/{o['list']}/archive/"),
    "unarchive list": Case("edit", "POST", lambda o: f"/api/v1/lists/{o['list']}/unarchive/"),
    "create card": Case(
        "edit", "POST", lambda o: f"/api/v1/lists/{o['list']}/cards/", lambda o: {"title": "t"}, 201
    ),
    "update card": Case(
        "edit", "PATCH", lambda o: f"/api/v1/cards/{o['card']}/", lambda o: {"title": "t2"}
    ),
    "delete card": Case("edit", "DELETE", lambda o: f"/api/v1/cards/{o['card']}/", status=204),
    "archive card": Case("edit", "POST", lambda o: f"/api/v1/cards/{o['card']}/archive/"),
    "unarchive card": Case("edit", "POST", lambda o: f"/api/v1/cards/{o['card']}/unarchive/"),
    "move card": Case(
        "edit",
        "POST",
        lambda o: f"/api/v1/cards/{o['card']}/move/",
        lambda o: {"list_id": o["list2"]},
    ),
    "add checklist item": Case(
        "edit",
        "POST",
        lambda o: f"/api/v1/cards/{o['card']}/checklist/",
        lambda o: {"text": "x"},
        201,
    ),
    "update checklist item": Case(
        "edit",
        "PATCH",
        lambda o: f"/api/v1/checklist-items/{o['item']}/",
        lambda o: {"is_done": True},
    ),
    "delete checklist item": Case(
        "edit", "DELETE", lambda o: f"/api/v1/checklist-items/{o['item']}/"
    ),
    "create label": Case(
        "edit",
        "POST",
        lambda o: board_path(o["board"], "labels/"),
        lambda o: {"name": "New", "color": "#abcdef"},
        201,
    ),
    "update label": Case(
        "edit", "PATCH", lambda o: f"/api/v1/labels/{o['label']}/", lambda o: {"color": "#000001"}
    ),
    "delete label": Case("edit", "DELETE", lambda o: f"/api/v1/labels/{o['label']}/", status=204),
    "make private": Case(
        "manage", "PATCH", lambda o: board_path(o["board"]), lambda o: {"is_private": True}
    ),
    "archive board": Case("manage", "POST", lambda o: board_path(o["board"], "archive/")),
    "unarchive board": Case("manage", "POST", lambda o: board_path(o["board"], "unarchive/")),
    "delete board": Case("manage", "DELETE", lambda o: board_path(o["board"]), status=204),
    "grant member": Case(
        "manage",
        "PUT",
        lambda o: board_path(o["board"], f"members/{o['target']}/"),
        lambda o: {"role": "editor"},
    ),
    "revoke member": Case(
        "manage",
        "DELETE",
        lambda o: board_path(o["board"], f"members/{o['granted']}/"),
        status=204,
    ),
}


async def _objects(api: Any, world: BoardWorld) -> dict[str, str]:
    """A fresh board with everything the endpoints touch (so each call starts from scratch)."""
    owner = world.users["owner"].access_token

    async def ok(method: str, path: str, body: Any = None) -> dict:
        response = await api.request(method, path, body, token=owner)
        assert response.status in (200, 201), response.body
        return response.body

    board = (await create_board(api, world.users["owner"], world.workspace["id"]))["id"]
    for role in ("viewer", "guest_viewer"):
        await ok("PUT", board_path(board, f"members/{world.users[role].id}/"), {"role": "viewer"})
    lst = await ok("POST", board_path(board, "lists/"), {"name": "A"})
    list2 = await ok("POST", board_path(board, "lists/"), {"name": "B"})
    card = await ok("POST", f"/api/v1/lists/{lst['id']}/cards/", {"title": "c"})
    item = await ok("POST", f"/api/v1/cards/{card['id']}/checklist/", {"text": "i"})
    label = await ok("POST", board_path(board, "labels/"), {"name": "L", "color": "#ffffff"})
    return {
        "board": board,
        "list": lst["id"],
        "list2": list2["id"],
        "card": card["id"],
        "item": item["checklist"][0]["id"],
        "label": label["id"],
        "target": world.users["guest"].id,
        "granted": world.users["viewer"].id,
    }


@pytest.mark.parametrize("name", list(CASES))
async def test_endpoint_permissions(api, ctx, name):
    case = CASES[name]
    world = await board_world(api, ctx)
    objects = None
    for role in ROLES:
        # Denied calls change nothing, so their objects serve the next role too.
        objects = objects or await _objects(api, world)
        seq_before = await _event_seq(ctx, objects["board"])
        response = await api.request(
            case.method,
            case.path(objects),
            case.body(objects),
            token=world.token(role),
        )
        if role in ALLOWED[case.level]:
            assert response.status == case.status, (role, response.body)
            objects = None
        else:
            expected = 404 if role == "outsider" else 403
            assert response.status == expected, (role, response.status, response.body)
            assert await _event_seq(ctx, objects["board"]) == seq_before, role


async def _event_seq(ctx: Any, board_id: str) -> int:
    return await ctx.db.fetchval("SELECT event_seq FROM boards WHERE id = $1", board_id)


async def test_create_board_needs_workspace_member(api, ctx):
    world = await board_world(api, ctx)
    expected = {
        "outsider": 404,
        "guest": 403,
        "guest_viewer": 403,
        "viewer": 201,
        "member": 201,
        "owner": 201,
    }
    for role, status in expected.items():
        response = await api.post(
            BOARDS, {"workspace_id": world.workspace["id"], "name": role}, token=world.token(role)
        )
        assert response.status == status, (role, response.body)


async def test_private_board_matrix(api, ctx):
    """Private: plain members lose the default editor role; grants and Admin/Owner still work."""
    world = await board_world(api, ctx, private=True)
    expected = {
        "outsider": 404,
        "guest": 403,
        "guest_viewer": 200,
        "viewer": 200,
        "member": 403,
        "owner": 200,
    }
    for role, status in expected.items():
        response = await api.get(board_path(world.board_id), token=world.token(role))
        assert response.status == status, role
