"""Lists, cards, checklists and moves: right and wrong input, stale versions, rebalancing."""

from __future__ import annotations

import uuid

import pytest

from core import ranks
from tests.board_helpers import (
    board_path,
    board_world,
    card_titles,
    create_board,
    create_card,
    create_list,
)
from tests.ws_helpers import workspace_with


def card_path(card_id: str, suffix: str = "") -> str:
    return f"/api/v1/cards/{card_id}/{suffix}"


def list_path(list_id: str, suffix: str = "") -> str:
    return f"/api/v1/lists/{list_id}/{suffix}"


async def test_lists_create_rename_reorder_archive(api, ctx):
    world = await board_world(api, ctx)
    editor = world.users["member"]
    a = await create_list(api, editor, world.board_id, "A")
    c = await create_list(api, editor, world.board_id, "C")
    b = await create_list(api, editor, world.board_id, "B", after_id=a["id"])
    first = await create_list(api, editor, world.board_id, "First", before_id=a["id"])
    assert list(await card_titles(api, editor, world.board_id)) == ["First", "A", "B", "C"]
    renamed = await api.patch(
        list_path(b["id"]), {"name": "Bee", "version": 1}, token=editor.access_token
    )
    assert renamed.status == 200 and renamed.body["version"] == 2
    stale = await api.patch(
        list_path(b["id"]), {"name": "x", "version": 1}, token=editor.access_token
    )
    assert stale.status == 409 and stale.body["current"]["name"] == "Bee"
    moved = await api.post(
        list_path(c["id"], "move/"),
        {"after_id": first["id"], "before_id": a["id"]},
        token=editor.access_token,
    )
    assert moved.status == 200
    assert list(await card_titles(api, editor, world.board_id)) == ["First", "C", "A", "Bee"]
    not_neighbours = await api.post(
        list_path(c["id"], "move/"),
        {"after_id": first["id"], "before_id": b["id"]},
        token=editor.access_token,
    )
    assert not_neighbours.status == 409 and not_neighbours.error_code == "stale_placement"
    archived = await api.post(list_path(a["id"], "archive/"), token=editor.access_token)
    assert archived.status == 200 and archived.body["archived"] is True
    assert list(await card_titles(api, editor, world.board_id)) == ["First", "C", "Bee"]
    everything = await api.get(
        board_path(world.board_id) + "?include_archived=true", token=editor.access_token
    )
    assert len(everything.body["lists"]) == 4
    blocked = await api.post(
        list_path(a["id"], "cards/"), {"title": "x"}, token=editor.access_token
    )
    assert blocked.status == 409 and blocked.error_code == "list_archived"
    restored = await api.post(list_path(a["id"], "unarchive/"), token=editor.access_token)
    assert restored.body["archived"] is False


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({}, "name"),
        ({"name": ""}, "name"),
        ({"name": "x", "position": "a0"}, "position"),
        ({"name": "x", "after_id": "nope"}, "after_id"),
        ({"name": "x", "after_id": str(uuid.uuid4())}, "after_id"),
    ],
)
async def test_create_list_rejects_bad_input(api, ctx, body, field):
    world = await board_world(api, ctx)
    response = await api.post(
        board_path(world.board_id, "lists/"), body, token=world.token("owner")
    )
    assert response.status == 400, response.body
    assert field in response.body["error"]["fields"]


async def test_card_lifecycle_with_labels_assignees_checklist(api, ctx):
    world = await board_world(api, ctx)
    editor = world.users["member"]
    lst = await create_list(api, editor, world.board_id)
    label = await api.post(
        board_path(world.board_id, "labels/"),
        {"name": "Bug", "color": "#ff0000"},
        token=editor.access_token,
    )
    card = await create_card(
        api,
        editor,
        lst["id"],
        "Fix it",
        description="soon",
        due_at="2030-01-02T03:04:05+00:00",
        color="#112233",
        cover_url="https://example.com/c.png",
        labels=[label.body["id"]],
        assignees=[editor.id, world.users["viewer"].id],
    )
    assert card["labels"] == [label.body["id"]]
    assert set(card["assignees"]) == {editor.id, world.users["viewer"].id}
    assert card["due_at"].startswith("2030-01-02T03:04:05")
    fetched = await api.get(card_path(card["id"]), token=world.token("guest_viewer"))
    assert fetched.status == 200 and fetched.body == card
    assert fetched.headers["ETag"] == '"1"'
    updated = await api.patch(
        card_path(card["id"]),
        {"title": "Fixed", "due_at": None, "assignees": [], "version": 1},
        token=editor.access_token,
    )
    assert updated.status == 200, updated.body
    assert (updated.body["title"], updated.body["due_at"], updated.body["assignees"]) == (
        "Fixed",
        None,
        [],
    )
    assert updated.body["version"] == 2
    item = await api.post(
        card_path(card["id"], "checklist/"), {"text": "step 1"}, token=editor.access_token
    )
    assert item.status == 201 and item.body["version"] == 3
    item_id = item.body["checklist"][0]["id"]
    await api.post(
        card_path(card["id"], "checklist/"),
        {"text": "step 2", "is_done": True},
        token=editor.access_token,
    )
    ticked = await api.patch(
        f"/api/v1/checklist-items/{item_id}/", {"is_done": True}, token=editor.access_token
    )
    assert [i["is_done"] for i in ticked.body["checklist"]] == [True, True]
    assert [i["text"] for i in ticked.body["checklist"]] == ["step 1", "step 2"]
    removed = await api.delete(f"/api/v1/checklist-items/{item_id}/", token=editor.access_token)
    assert [i["text"] for i in removed.body["checklist"]] == ["step 2"]
    assert (
        await api.patch(
            f"/api/v1/checklist-items/{item_id}/", {"text": "x"}, token=editor.access_token
        )
    ).status == 404
    archived = await api.post(card_path(card["id"], "archive/"), token=editor.access_token)
    assert archived.body["archived"] is True
    assert await card_titles(api, editor, world.board_id) == {lst["name"]: []}
    unarchived = await api.post(card_path(card["id"], "unarchive/"), token=editor.access_token)
    assert unarchived.body["archived"] is False
    stale_delete = await api.delete(
        card_path(card["id"]), {"version": 1}, token=editor.access_token
    )
    assert stale_delete.status == 409
    deleted = await api.delete(card_path(card["id"]), token=editor.access_token)
    assert deleted.status == 204
    assert (await api.get(card_path(card["id"]), token=editor.access_token)).status == 404


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({}, "title"),
        ({"title": ""}, "title"),
        ({"title": "x" * 501}, "title"),
        ({"title": "x", "due_at": "tomorrow"}, "due_at"),
        ({"title": "x", "due_at": "2030-01-01T00:00:00"}, "due_at"),
        ({"title": "x", "color": "#12345"}, "color"),
        ({"title": "x", "cover_url": "ftp://x/y"}, "cover_url"),
        ({"title": "x", "labels": [str(uuid.uuid4())]}, "labels"),
        ({"title": "x", "labels": ["nope"]}, "labels"),
        ({"title": "x", "assignees": [str(uuid.uuid4())]}, "assignees"),
        ({"title": "x", "assignees": [str(uuid.uuid4())] * 21}, "assignees"),
        ({"title": "x", "board_id": str(uuid.uuid4())}, "board_id"),
        ({"title": "x", "version": 3}, "version"),
    ],
)
async def test_create_card_rejects_bad_input(api, ctx, body, field):
    world = await board_world(api, ctx)
    lst = await create_list(api, world.users["owner"], world.board_id)
    response = await api.post(list_path(lst["id"], "cards/"), body, token=world.token("owner"))
    assert response.status == 400, response.body
    assert field in response.body["error"]["fields"]


async def test_assignees_must_be_able_to_view_the_board(api, ctx):
    world = await board_world(api, ctx, private=True)
    owner = world.users["owner"]
    lst = await create_list(api, owner, world.board_id)
    # A plain member cannot see a private board; a guest with a viewer grant can.
    blind = await api.post(
        list_path(lst["id"], "cards/"),
        {"title": "x", "assignees": [world.users["member"].id, world.users["outsider"].id]},
        token=owner.access_token,
    )
    assert blind.status == 400
    assert len(blind.body["error"]["fields"]["assignees"]) == 2
    ok = await create_card(api, owner, lst["id"], assignees=[world.users["guest_viewer"].id])
    patch = await api.patch(
        card_path(ok["id"]), {"assignees": [world.users["guest"].id]}, token=owner.access_token
    )
    assert patch.status == 400 and "assignees" in patch.body["error"]["fields"]


@pytest.mark.parametrize(
    "body",
    [
        {},
        {"version": 1},
        {"list_id": str(uuid.uuid4())},
        {"board_id": str(uuid.uuid4())},
        {"position": "a0"},
        {"archived": True},
        {"created_by": str(uuid.uuid4())},
        {"title": None},
    ],
)
async def test_update_card_rejects_bad_input(api, ctx, body):
    world = await board_world(api, ctx)
    lst = await create_list(api, world.users["owner"], world.board_id)
    card = await create_card(api, world.users["owner"], lst["id"])
    response = await api.patch(card_path(card["id"]), body, token=world.token("owner"))
    assert response.status == 400, response.body


async def test_moves_within_and_across_lists(api, ctx):
    world = await board_world(api, ctx)
    editor = world.users["member"]
    todo = await create_list(api, editor, world.board_id, "Todo")
    done = await create_list(api, editor, world.board_id, "Done")
    a, b, c = [await create_card(api, editor, todo["id"], t) for t in "abc"]

    async def move(card: dict, **body: object) -> object:
        return await api.post(card_path(card["id"], "move/"), body, token=editor.access_token)

    assert (await move(c, list_id=todo["id"], before_id=a["id"])).status == 200
    assert await card_titles(api, editor, world.board_id) == {"Todo": ["c", "a", "b"], "Done": []}
    assert (await move(c, list_id=todo["id"], after_id=b["id"])).status == 200
    assert (await move(a, list_id=done["id"])).status == 200
    assert (await move(b, list_id=done["id"], before_id=a["id"])).status == 200
    assert await card_titles(api, editor, world.board_id) == {"Todo": ["c"], "Done": ["b", "a"]}
    moved = await move(c, list_id=done["id"], after_id=b["id"], before_id=a["id"])
    assert moved.status == 200 and moved.body["list_id"] == done["id"]
    assert await card_titles(api, editor, world.board_id) == {"Todo": [], "Done": ["b", "c", "a"]}
    # Wrong input.
    assert (await move(a, list_id=done["id"], after_id=a["id"])).status == 400
    assert (await move(a, list_id=todo["id"], after_id=b["id"])).status == 400  # not in that list
    assert (await move(a, list_id=str(uuid.uuid4()))).status == 400
    assert (await move(a)).status == 400
    assert (await move(a, list_id=done["id"], position="a0")).status == 400
    viewer = await api.post(
        card_path(a["id"], "move/"), {"list_id": done["id"]}, token=world.token("viewer")
    )
    assert viewer.status == 403


async def test_stale_move_and_update_get_409_with_current_card(api, ctx):
    world = await board_world(api, ctx)
    editor = world.users["member"]
    todo = await create_list(api, editor, world.board_id, "Todo")
    done = await create_list(api, editor, world.board_id, "Done")
    card = await create_card(api, editor, todo["id"], "x")
    edited = await api.patch(card_path(card["id"]), {"title": "y"}, token=editor.access_token)
    assert edited.body["version"] == 2
    stale_move = await api.post(
        card_path(card["id"], "move/"),
        {"list_id": done["id"], "version": 1},
        token=editor.access_token,
    )
    assert stale_move.status == 409
    assert stale_move.error_code == "version_conflict"
    assert stale_move.body["current"]["title"] == "y"
    assert stale_move.body["current"]["list_id"] == todo["id"]
    assert stale_move.headers["ETag"] == '"2"'
    by_header = await api.post(
        card_path(card["id"], "move/"),
        {"list_id": done["id"]},
        token=editor.access_token,
        headers={"If-Match": '"2"'},
    )
    assert by_header.status == 200 and by_header.body["version"] == 3
    stale_update = await api.patch(
        card_path(card["id"]),
        {"title": "z"},
        token=editor.access_token,
        headers={"If-Match": '"2"'},
    )
    assert stale_update.status == 409 and stale_update.body["current"]["list_id"] == done["id"]


async def test_cross_board_move(api, ctx):
    world = await board_world(api, ctx)
    owner, member = world.users["owner"], world.users["member"]
    other = await create_board(api, owner, world.workspace["id"], name="Other")
    source = await create_list(api, owner, world.board_id)
    target = await create_list(api, owner, other["id"])
    label = await api.post(
        board_path(world.board_id, "labels/"),
        {"name": "L", "color": "#000000"},
        token=owner.access_token,
    )
    card = await create_card(
        api,
        owner,
        source["id"],
        labels=[label.body["id"]],
        assignees=[member.id, world.users["guest_viewer"].id],
    )
    moved = await api.post(
        card_path(card["id"], "move/"), {"list_id": target["id"]}, token=member.access_token
    )
    assert moved.status == 200, moved.body
    assert moved.body["board_id"] == other["id"] and moved.body["labels"] == []
    # The guest's grant is on the first board only: not an assignee on the new one.
    assert moved.body["assignees"] == [member.id]
    # Editor on the source only: not allowed to move there.
    private = await create_board(api, owner, world.workspace["id"], is_private=True)
    hidden = await create_list(api, owner, private["id"])
    denied = await api.post(
        card_path(card["id"], "move/"), {"list_id": hidden["id"]}, token=member.access_token
    )
    assert denied.status == 403
    # Another workspace: never.
    foreign_ws, _ = await workspace_with(api, ctx)
    foreign_board = await create_board(api, _["owner"], foreign_ws["id"])
    foreign_list = await create_list(api, _["owner"], foreign_board["id"])
    assert (
        await api.post(
            card_path(card["id"], "move/"),
            {"list_id": foreign_list["id"]},
            token=owner.access_token,
        )
    ).status == 404


async def test_move_rebalances_a_list_whose_keys_grew_too_long(api, ctx):
    world = await board_world(api, ctx)
    owner = world.users["owner"]
    lst = await create_list(api, owner, world.board_id)
    a, b, c = [await create_card(api, owner, lst["id"], t) for t in "abc"]
    # Two neighbours whose only key in between is longer than allowed.
    low = "a0" + "0" * (ranks.MAX_KEY_LENGTH - 3) + "1"
    high = "a0" + "0" * (ranks.MAX_KEY_LENGTH - 3) + "2"
    assert ranks.needs_rebalance(ranks.key_between(low, high))
    await ctx.db.execute("UPDATE cards SET position = $2 WHERE id = $1", a["id"], low)
    await ctx.db.execute("UPDATE cards SET position = $2 WHERE id = $1", b["id"], high)
    moved = await api.post(
        card_path(c["id"], "move/"),
        {"list_id": lst["id"], "after_id": a["id"], "before_id": b["id"]},
        token=owner.access_token,
    )
    assert moved.status == 200, moved.body
    assert len(moved.body["position"]) <= 4
    assert await card_titles(api, owner, world.board_id) == {lst["name"]: ["a", "c", "b"]}
    rebalance = await ctx.db.fetchrow(
        "SELECT payload FROM board_events WHERE board_id = $1 AND type = 'positions.rebalanced'",
        world.board_id,
    )
    positions = rebalance["payload"]["entity"]["positions"]
    assert set(positions) == {a["id"], b["id"], c["id"]}
