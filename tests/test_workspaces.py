"""Workspaces: create, list mine, get, update, soft delete, purge; bad input on every endpoint."""

from __future__ import annotations

import uuid
from datetime import timedelta

import pytest

from core.errors import NotFound
from services import policy
from services import workspaces as service
from services.policy import Action, Resource
from tests.ws_helpers import (
    WORKSPACES,
    create_workspace,
    fast_user,
    insert_board,
    insert_document,
    workspace_with,
    ws_path,
)


async def test_create_makes_the_creator_owner_and_derives_a_slug(api, ctx):
    owner = await fast_user(ctx, "owner")
    created = await api.post(
        WORKSPACES, {"name": "  Acme Design Team!  "}, token=owner.access_token
    )
    assert created.status == 201, created.body
    assert created.body["name"] == "Acme Design Team!"
    assert created.body["my_role"] == "owner"
    assert created.body["slug"].startswith("acme-design-team")
    role = await ctx.db.fetchval(
        "SELECT role FROM workspace_members WHERE workspace_id = $1 AND user_id = $2",
        created.body["id"],
        owner.id,
    )
    assert role == "owner"
    again = await api.post(WORKSPACES, {"name": "Acme Design Team!"}, token=owner.access_token)
    assert again.status == 201
    assert again.body["slug"] != created.body["slug"]


async def test_explicit_slug_is_unique_case_insensitively(api, ctx):
    owner = await fast_user(ctx)
    slug = f"Team-{uuid.uuid4().hex[:8]}"
    first = await api.post(WORKSPACES, {"name": "A", "slug": slug}, token=owner.access_token)
    assert first.status == 201
    assert first.body["slug"] == slug.lower()
    clash = await api.post(
        WORKSPACES, {"name": "B", "slug": slug.upper()}, token=owner.access_token
    )
    assert clash.status == 409
    assert clash.error_code == "slug_taken"


@pytest.mark.parametrize(
    "body",
    [
        {},
        {"name": ""},
        {"name": "   "},
        {"name": 42},
        {"name": "x" * 101},
        {"name": "ok", "slug": "no spaces"},
        {"name": "ok", "slug": "-dash-first"},
        {"name": "ok", "slug": "a" * 65},
        {"name": "ok", "created_by": str(uuid.uuid4())},
        {"name": "ok", "id": str(uuid.uuid4())},
        {"name": "ok", "role": "owner"},
        ["name"],
    ],
)
async def test_create_rejects_bad_input(api, ctx, body):
    user = await fast_user(ctx)
    response = await api.post(WORKSPACES, body, token=user.access_token)
    assert response.status == 400, response.body
    assert response.error_code == "validation_error"


async def test_create_needs_a_token_and_json(api, ctx):
    assert (await api.post(WORKSPACES, {"name": "x"})).status == 401
    user = await fast_user(ctx)
    malformed = await api.post(WORKSPACES, raw=b"{nope", token=user.access_token)
    assert malformed.status == 400


async def test_list_mine_with_role_and_pagination(api, ctx):
    owner = await fast_user(ctx, "owner")
    other = await fast_user(ctx, "other")
    mine = [await create_workspace(api, owner, f"W{i}") for i in range(3)]
    await create_workspace(api, other, "Not mine")
    first = await api.get(f"{WORKSPACES}?limit=2", token=owner.access_token)
    assert first.status == 200
    assert [w["id"] for w in first.body["items"]] == [w["id"] for w in mine[:2]]
    assert all(w["my_role"] == "owner" for w in first.body["items"])
    assert first.body["next_offset"] == 2
    second = await api.get(f"{WORKSPACES}?limit=2&offset=2", token=owner.access_token)
    assert [w["id"] for w in second.body["items"]] == [mine[2]["id"]]
    assert second.body["next_offset"] is None


@pytest.mark.parametrize(
    "query", ["limit=0", "limit=101", "limit=x", "offset=-1", "offset=1.5", "cursor=abc"]
)
async def test_pagination_rejects_bad_query(api, ctx, query):
    user = await fast_user(ctx)
    response = await api.get(f"{WORKSPACES}?{query}", token=user.access_token)
    assert response.status == 400


async def test_get_hides_the_workspace_from_non_members(api, ctx):
    workspace, users = await workspace_with(api, ctx, "guest")
    outsider = await fast_user(ctx, "outsider")
    for user, status in ((users["guest"], 200), (outsider, 404)):
        response = await api.get(ws_path(workspace["id"]), token=user.access_token)
        assert response.status == status
    missing = await api.get(ws_path(str(uuid.uuid4())), token=outsider.access_token)
    assert missing.status == 404
    # Same body for "exists but not yours" and "does not exist": nothing to tell them apart.
    hidden = await api.get(ws_path(workspace["id"]), token=outsider.access_token)
    assert hidden.body == missing.body


@pytest.mark.parametrize("bad", ["not-a-uuid", "123", "00000000-0000-0000-0000-00000000000g"])
@pytest.mark.parametrize(
    "method,suffix",
    [
        ("GET", ""),
        ("PATCH", ""),
        ("DELETE", ""),
        ("GET", "members/"),
        ("GET", "boards/"),
        ("GET", "documents/"),
        ("GET", "invitations/"),
        ("POST", "invite/"),
        ("POST", "leave/"),
        ("POST", "transfer-ownership/"),
    ],
)
async def test_bad_workspace_ids_are_404(api, ctx, bad, method, suffix):
    user = await fast_user(ctx)
    response = await api.request(method, f"{WORKSPACES}{bad}/{suffix}", token=user.access_token)
    assert response.status == 404, response.body
    assert response.body["error"]["fields"] == {"workspace_id": ["not a UUID"]}


async def test_update_by_admin_and_mass_assignment_is_refused(api, ctx):
    workspace, users = await workspace_with(api, ctx, "admin", "member")
    path = ws_path(workspace["id"])
    renamed = await api.patch(path, {"name": "Renamed"}, token=users["admin"].access_token)
    assert renamed.status == 200
    assert renamed.body["name"] == "Renamed"
    assert renamed.body["my_role"] == "admin"
    for body in (
        {"role": "owner"},
        {"name": "x", "created_by": users["member"].id},
        {"deleted_at": None},
        {"my_role": "owner"},
        {"name": None},
        {"slug": 7},
    ):
        response = await api.patch(path, body, token=users["admin"].access_token)
        assert response.status == 400, body
    assert (
        await ctx.db.fetchval(
            "SELECT role FROM workspace_members WHERE workspace_id = $1 AND user_id = $2",
            workspace["id"],
            users["admin"].id,
        )
        == "admin"
    )
    row = await ctx.db.fetchrow(
        "SELECT name, created_by FROM workspaces WHERE id = $1", path[-37:-1]
    )
    assert row["name"] == "Renamed" and str(row["created_by"]) == users["owner"].id
    empty = await api.patch(path, {}, token=users["admin"].access_token)
    assert empty.status == 400
    forbidden = await api.patch(path, {"name": "Nope"}, token=users["member"].access_token)
    assert forbidden.status == 403


async def test_update_slug_conflict(api, ctx):
    owner = await fast_user(ctx)
    taken = await create_workspace(api, owner)
    workspace = await create_workspace(api, owner)
    response = await api.patch(
        ws_path(workspace["id"]), {"slug": taken["slug"].upper()}, token=owner.access_token
    )
    assert response.status == 409
    assert response.error_code == "slug_taken"


async def test_soft_delete_hides_everything_at_once(api, ctx):
    workspace, users = await workspace_with(api, ctx, "admin", "member")
    ws = workspace["id"]
    board = Resource.board(await insert_board(ctx, ws))
    document = Resource.document(await insert_document(ctx, ws))
    member = users["member"].id
    # Warm the permission cache so the test also proves it is invalidated.
    for _ in range(2):
        assert await policy.can(ctx, member, Action.BOARD_EDIT, board)
        assert await policy.can(ctx, member, Action.DOCUMENT_EDIT, document)
    assert (await api.delete(ws_path(ws), token=users["admin"].access_token)).status == 403
    deleted = await api.delete(ws_path(ws), token=users["owner"].access_token)
    assert deleted.status == 200, deleted.body
    assert deleted.body["id"] == ws
    assert "purge_after" in deleted.body
    for user in users.values():
        assert (await api.get(ws_path(ws), token=user.access_token)).status == 404
        assert (await api.get(ws_path(ws, "boards/"), token=user.access_token)).status == 404
        mine = await api.get(WORKSPACES, token=user.access_token)
        assert ws not in [w["id"] for w in mine.body["items"]]
    for resource in (board, document):
        assert await policy.load_access(ctx, member, resource) is None
        with pytest.raises(NotFound):
            await policy.require(ctx, users["owner"].id, Action.BOARD_VIEW, resource)
    # The slug stays reserved during the grace period (the workspace can still be restored).
    clash = await api.post(
        WORKSPACES, {"name": "x", "slug": workspace["slug"]}, token=users["owner"].access_token
    )
    assert clash.status == 409


async def test_purge_deleted_workspaces_after_the_grace_period(api, ctx):
    owner = await fast_user(ctx)
    doomed = await create_workspace(api, owner)
    recent = await create_workspace(api, owner)
    alive = await create_workspace(api, owner)
    document = await insert_document(ctx, doomed["id"])
    for workspace in (doomed, recent):
        assert (await api.delete(ws_path(workspace["id"]), token=owner.access_token)).status == 200
    await ctx.db.execute(
        "UPDATE workspaces SET deleted_at = now() - interval '31 days' WHERE id = $1",
        doomed["id"],
    )
    purged = await service.purge_deleted_workspaces(ctx)
    assert doomed["id"] in [p.workspace_id for p in purged]
    mine = next(p for p in purged if p.workspace_id == doomed["id"])
    assert mine.document_ids == [document]
    remaining = {
        str(r["id"])
        for r in await ctx.db.fetch(
            "SELECT id FROM workspaces WHERE id = ANY($1::uuid[])",
            [doomed["id"], recent["id"], alive["id"]],
        )
    }
    assert remaining == {recent["id"], alive["id"]}
    assert await ctx.db.fetchval("SELECT count(*) FROM documents WHERE id = $1", document) == 0
    # An explicit (shorter) age purges the recent one too; live workspaces are never touched.
    purged_now = await service.purge_deleted_workspaces(ctx, older_than=timedelta(seconds=0))
    assert recent["id"] in [p.workspace_id for p in purged_now]
    assert alive["id"] not in [p.workspace_id for p in purged_now]


@pytest.fixture
def db_calls(ctx, monkeypatch):
    """Counts the node's Postgres round trips (every query goes through these methods)."""
    calls = {"n": 0}
    for name in ("fetch", "fetchrow", "fetchval", "execute"):
        original = getattr(ctx.db, name)

        async def counted(*args, _original=original, **kwargs):
            calls["n"] += 1
            return await _original(*args, **kwargs)

        monkeypatch.setattr(ctx.db, name, counted)
    return calls


async def _queries_for(api, path: str, token: str, db_calls) -> int:
    before = db_calls["n"]
    response = await api.get(path, token=token)
    assert response.status == 200
    return db_calls["n"] - before


async def test_lists_cost_the_same_queries_for_2_or_40_rows(api, ctx, db_calls):
    small, small_users = await workspace_with(api, ctx, "member")
    big, big_users = await workspace_with(api, ctx, "member")
    for workspace, count in ((small, 2), (big, 40)):
        for i in range(count):
            board = await insert_board(ctx, workspace["id"], private=i % 2 == 0)
            await insert_document(ctx, workspace["id"], board_id=board)
            user = await fast_user(ctx, "extra")
            await ctx.db.execute(
                "INSERT INTO workspace_members (workspace_id, user_id, role) VALUES ($1, $2, 'guest')",
                workspace["id"],
                user.id,
            )
    for suffix in ("boards/", "documents/", "members/"):
        costs = []
        for workspace, users in ((small, small_users), (big, big_users)):
            await api.get(ws_path(workspace["id"]), token=users["member"].access_token)  # warm
            path = ws_path(workspace["id"], f"{suffix}?limit=100")
            costs.append(await _queries_for(api, path, users["member"].access_token, db_calls))
        assert costs[0] == costs[1] <= 2, (suffix, costs)
