"""Boards REST API: CRUD with right and wrong input, versions (409), archive, members, labels."""

from __future__ import annotations

import asyncio
import re
import uuid
from typing import Any

import pytest

from tests.board_helpers import (
    BOARDS,
    board_path,
    board_world,
    create_card,
    create_list,
)


async def test_create_and_get_board_with_contents(api, ctx):
    world = await board_world(api, ctx)
    owner = world.users["owner"]
    assert world.board["version"] == 1
    assert world.board["event_seq"] == 1
    assert world.board["is_private"] is False and world.board["archived"] is False
    todo = await create_list(api, owner, world.board_id, "Todo")
    done = await create_list(api, owner, world.board_id, "Done")
    card = await create_card(api, owner, todo["id"], "Write tests", description="all of them")
    detail = await api.get(board_path(world.board_id), token=owner.access_token)
    assert detail.status == 200
    assert detail.headers["ETag"] == '"1"'
    assert [lst["name"] for lst in detail.body["lists"]] == ["Todo", "Done"]
    assert detail.body["lists"][0]["cards"][0]["id"] == card["id"]
    assert detail.body["lists"][1]["id"] == done["id"]
    # board.created, 2 grants, 2 lists, 1 card
    assert detail.body["event_seq"] == 6


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"name": "x"}, "workspace_id"),
        ({"workspace_id": "nope", "name": "x"}, "workspace_id"),
        ({"name": ""}, "name"),
        ({"name": "x" * 201}, "name"),
        ({"name": "x", "color": "red"}, "color"),
        ({"name": "x", "background": "http://example.com/a.png"}, "background"),
        ({"name": "x", "is_private": "maybe"}, "is_private"),
        ({"name": "x", "event_seq": 5}, "event_seq"),
        ({"name": "x", "created_by": str(uuid.uuid4())}, "created_by"),
    ],
)
async def test_create_board_rejects_bad_input(api, ctx, body, field):
    world = await board_world(api, ctx)
    payload = {"workspace_id": world.workspace["id"], **body}
    if field == "workspace_id" and "workspace_id" in body:
        payload["workspace_id"] = body["workspace_id"]
    elif field == "workspace_id":
        payload.pop("workspace_id")
    response = await api.post(BOARDS, payload, token=world.token("owner"))
    assert response.status == 400, response.body
    assert field in response.body["error"]["fields"]


async def test_create_board_needs_member_role(api, ctx):
    world = await board_world(api, ctx)
    body = {"workspace_id": world.workspace["id"], "name": "x"}
    guest = await api.post(BOARDS, body, token=world.token("guest"))
    assert guest.status == 403
    outsider = await api.post(BOARDS, body, token=world.token("outsider"))
    assert outsider.status == 404
    anonymous = await api.post(BOARDS, body)
    assert anonymous.status == 401


async def test_update_board_and_optimistic_concurrency(api, ctx):
    world = await board_world(api, ctx)
    token = world.token("member")
    renamed = await api.patch(
        board_path(world.board_id), {"name": "Roadmap", "version": 1}, token=token
    )
    assert renamed.status == 200, renamed.body
    assert renamed.body["name"] == "Roadmap" and renamed.body["version"] == 2
    stale = await api.patch(board_path(world.board_id), {"name": "Old", "version": 1}, token=token)
    assert stale.status == 409
    assert stale.error_code == "version_conflict"
    assert stale.body["current"]["name"] == "Roadmap"
    assert stale.headers["ETag"] == '"2"'
    via_header = await api.patch(
        board_path(world.board_id),
        {"color": "#00ff00"},
        token=token,
        headers={"If-Match": '"2"'},
    )
    assert via_header.status == 200 and via_header.body["color"] == "#00ff00"
    disagree = await api.patch(
        board_path(world.board_id),
        {"color": "#00ff00", "version": 3},
        token=token,
        headers={"If-Match": '"4"'},
    )
    assert disagree.status == 400
    bad_header = await api.patch(
        board_path(world.board_id), {"color": None}, token=token, headers={"If-Match": "abc"}
    )
    assert bad_header.status == 400


@pytest.mark.parametrize(
    "body",
    [{}, {"version": 1}, {"workspace_id": str(uuid.uuid4())}, {"version": 0}, {"name": 5}],
)
async def test_update_board_rejects_bad_input(api, ctx, body):
    world = await board_world(api, ctx)
    response = await api.patch(board_path(world.board_id), body, token=world.token("owner"))
    assert response.status == 400, response.body


async def test_private_flag_needs_manager(api, ctx):
    world = await board_world(api, ctx)
    member = await api.patch(
        board_path(world.board_id), {"is_private": True}, token=world.token("member")
    )
    assert member.status == 403
    owner = await api.patch(
        board_path(world.board_id), {"is_private": True}, token=world.token("owner")
    )
    assert owner.status == 200 and owner.body["is_private"] is True
    # A plain member has no grant on the private board any more.
    hidden = await api.get(board_path(world.board_id), token=world.token("member"))
    assert hidden.status == 403


async def test_archived_board_is_read_only_until_unarchived(api, ctx):
    world = await board_world(api, ctx)
    owner = world.users["owner"]
    lst = await create_list(api, owner, world.board_id)
    archived = await api.post(board_path(world.board_id, "archive/"), token=owner.access_token)
    assert archived.status == 200 and archived.body["archived"] is True
    again = await api.post(board_path(world.board_id, "archive/"), token=owner.access_token)
    assert again.status == 200 and again.body["version"] == archived.body["version"]
    blocked = await api.post(
        f"/api/v1/lists/{lst['id']}/cards/", {"title": "x"}, token=owner.access_token
    )
    assert blocked.status == 409 and blocked.error_code == "board_archived"
    readable = await api.get(board_path(world.board_id), token=world.token("viewer"))
    assert readable.status == 200
    restored = await api.post(board_path(world.board_id, "unarchive/"), token=owner.access_token)
    assert restored.status == 200 and restored.body["archived"] is False
    await create_card(api, owner, lst["id"])


async def test_delete_board(api, ctx):
    world = await board_world(api, ctx)
    by_member = await api.delete(board_path(world.board_id), token=world.token("member"))
    assert by_member.status == 403
    stale = await api.delete(board_path(world.board_id), {"version": 9}, token=world.token("owner"))
    assert stale.status == 409
    deleted = await api.delete(board_path(world.board_id), token=world.token("owner"))
    assert deleted.status == 204
    gone = await api.get(board_path(world.board_id), token=world.token("owner"))
    assert gone.status == 404


async def test_bad_ids_are_404(api, ctx):
    world = await board_world(api, ctx)
    token = world.token("owner")
    assert (await api.get(board_path("not-a-uuid"), token=token)).status == 404
    assert (await api.get(board_path(str(uuid.uuid4())), token=token)).status == 404
    assert (await api.get(f"/api/v1/cards/{uuid.uuid4()}/", token=token)).status == 404
    assert (
        await api.patch(f"/api/v1/lists/{uuid.uuid4()}/", {"name": "x"}, token=token)
    ).status == 404


async def test_members_grant_and_revoke(api, ctx):
    world = await board_world(api, ctx)
    owner, guest = world.users["owner"], world.users["guest"]
    listing = await api.get(board_path(world.board_id, "members/"), token=world.token("viewer"))
    assert listing.status == 200
    roles = {m["user_id"]: m["role"] for m in listing.body["members"]}
    assert roles[owner.id] == "manager" and roles[world.users["viewer"].id] == "viewer"
    assert (await api.get(board_path(world.board_id), token=guest.access_token)).status == 403
    path = board_path(world.board_id, f"members/{guest.id}/")
    granted = await api.put(path, {"role": "editor"}, token=owner.access_token)
    assert granted.status == 200 and granted.body["role"] == "editor"
    assert (await api.get(board_path(world.board_id), token=guest.access_token)).status == 200
    bad_role = await api.put(path, {"role": "owner"}, token=owner.access_token)
    assert bad_role.status == 400
    outsider_path = board_path(world.board_id, f"members/{world.users['outsider'].id}/")
    not_member = await api.put(outsider_path, {"role": "viewer"}, token=owner.access_token)
    assert not_member.status == 400 and "user_id" in not_member.body["error"]["fields"]
    by_editor = await api.put(path, {"role": "viewer"}, token=world.token("member"))
    assert by_editor.status == 403
    revoked = await api.delete(path, token=owner.access_token)
    assert revoked.status == 204
    assert (await api.delete(path, token=owner.access_token)).status == 404
    assert (await api.get(board_path(world.board_id), token=guest.access_token)).status == 403


async def test_labels(api, ctx):
    world = await board_world(api, ctx)
    owner = world.users["owner"]
    path = board_path(world.board_id, "labels/")
    bug = await api.post(path, {"name": "Bug", "color": "#ff0000"}, token=owner.access_token)
    assert bug.status == 201
    duplicate = await api.post(path, {"name": "bug", "color": "#00ff00"}, token=owner.access_token)
    assert duplicate.status == 409 and duplicate.error_code == "label_exists"
    assert (
        await api.post(path, {"name": "x", "color": "blue"}, token=owner.access_token)
    ).status == 400
    assert (await api.post(path, {"name": "x"}, token=owner.access_token)).status == 400
    lst = await create_list(api, owner, world.board_id)
    card = await create_card(api, owner, lst["id"], labels=[bug.body["id"]])
    assert card["labels"] == [bug.body["id"]]
    label_path = f"/api/v1/labels/{bug.body['id']}/"
    renamed = await api.patch(label_path, {"name": "Defect"}, token=owner.access_token)
    assert renamed.status == 200 and renamed.body["name"] == "Defect"
    assert (await api.patch(label_path, {}, token=owner.access_token)).status == 400
    assert (await api.patch(label_path, {"name": "x"}, token=world.token("viewer"))).status == 403
    assert (await api.delete(label_path, token=owner.access_token)).status == 204
    after = await api.get(f"/api/v1/cards/{card['id']}/", token=owner.access_token)
    assert after.body["labels"] == []
    assert (await api.delete(label_path, token=owner.access_token)).status == 404


OUR_TABLES = re.compile(r"\bFROM (boards|lists|cards|labels|checklist_items|card_\w+)\b")


async def test_board_detail_query_count_does_not_grow_with_cards(api, ctx):
    """No N+1: the same number of statements for 1 card as for 30 cards with children."""
    from models.repo import cards as cards_repo

    world = await board_world(api, ctx)
    owner = world.users["owner"]
    lst = await create_list(api, owner, world.board_id)

    async def add_card(title: str) -> None:
        card = await create_card(api, owner, lst["id"], title, assignees=[owner.id])
        checklist = f"/api/v1/cards/{card['id']}/checklist/"
        assert (await api.post(checklist, {"text": "a"}, token=owner.access_token)).status == 201

    queries: list[list[tuple[str, str]]] = []

    async def count_queries() -> tuple[int, int]:
        seen: list[tuple[str, str]] = []

        def log_query(record: Any) -> None:
            # (query, args): a statement asyncpg re-runs after invalidating its cached plan is
            # logged twice with the same args; an N+1 loop runs one query with different args.
            seen.append((record.query, repr(record.args)))

        async with ctx.db.connection() as conn:
            conn.add_query_logger(log_query)
            lists = await cards_repo.load_board_contents(
                conn, world.board_id, include_archived=False
            )
            conn.remove_query_logger(log_query)
        await asyncio.sleep(0)  # loggers are called soon after each query, not during it
        # Ours, not asyncpg's type introspection (first use of a type on a connection).
        # Ours only: asyncpg adds type introspection and JIT probes on a connection's first use.
        ours = sorted({(q, a) for q, a in seen if OUR_TABLES.search(q)})
        queries.append(ours)
        return len(ours), len(lists[0]["cards"])

    await add_card("first")
    few, one = await count_queries()
    for i in range(30):
        await add_card(f"c{i}")
    many, thirty_one = await count_queries()
    assert (one, thirty_one) == (1, 31)
    assert many == few <= 5, queries
