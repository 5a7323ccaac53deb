"""The Redis permission cache: hits, immediate invalidation, races, lost keys, Redis down."""

from __future__ import annotations

import asyncio

import pytest

from bus.revocations import REVOCATION_SUBJECT
from services import permissions_cache, policy
from services.permissions_cache import entry_key, user_generation_key, workspace_generation_key
from services.policy import Action, Resource, ResourceRole
from tests.ws_helpers import (
    Collector,
    fast_user,
    grant,
    insert_board,
    insert_document,
    workspace_with,
    ws_path,
)


async def redis_get(ctx, key: str) -> bytes | None:
    return await ctx.cache.run(lambda r: r.get(key))


async def test_decisions_are_served_from_redis_until_invalidated(api, ctx):
    workspace, users = await workspace_with(api, ctx, "member")
    ws, member = workspace["id"], users["member"].id
    board = Resource.board(await insert_board(ctx, ws))
    for _ in range(2):  # the first lookup learns the board's workspace, the second caches
        assert await policy.can(ctx, member, Action.BOARD_EDIT, board)
    assert await redis_get(ctx, entry_key(member, "board", board.id)) is not None
    # A change made without invalidation is not seen: this is what the cache saves, and why
    # every writer must call the invalidation functions.
    await ctx.db.execute("UPDATE boards SET is_private = true WHERE id = $1", board.id)
    assert await policy.can(ctx, member, Action.BOARD_EDIT, board)
    await permissions_cache.invalidate_resource(ctx, "board", board.id, ws)
    assert not await policy.can(ctx, member, Action.BOARD_VIEW, board)


async def test_removed_member_loses_access_on_the_next_request(api, ctx):
    workspace, users = await workspace_with(api, ctx, "admin", "member")
    ws, member = workspace["id"], users["member"]
    for _ in range(2):
        assert (await api.get(ws_path(ws), token=member.access_token)).status == 200
    assert await redis_get(ctx, entry_key(member.id, "workspace", ws)) is not None
    removed = await api.delete(
        ws_path(ws, f"members/{member.id}/"), token=users["admin"].access_token
    )
    assert removed.status == 204
    assert (await api.get(ws_path(ws), token=member.access_token)).status == 404
    assert (await api.get(ws_path(ws, "documents/"), token=member.access_token)).status == 404


async def test_demoted_admin_loses_rights_on_the_next_request(api, ctx):
    workspace, users = await workspace_with(api, ctx, "admin")
    ws, admin = workspace["id"], users["admin"]
    for name in ("One", "Two"):
        assert (
            await api.patch(ws_path(ws), {"name": name}, token=admin.access_token)
        ).status == 200
    demoted = await api.patch(
        ws_path(ws, f"members/{admin.id}/"), {"role": "member"}, token=users["owner"].access_token
    )
    assert demoted.status == 200
    assert (await api.patch(ws_path(ws), {"name": "Three"}, token=admin.access_token)).status == 403


async def test_grant_changes_apply_at_once(api, ctx):
    workspace, users = await workspace_with(api, ctx, "guest")
    ws, guest = workspace["id"], users["guest"].id
    board = Resource.board(await insert_board(ctx, ws, private=True))
    for _ in range(2):
        assert not await policy.can(ctx, guest, Action.BOARD_VIEW, board)
    await grant(ctx, ws, "board", board.id, guest, "viewer")
    assert await policy.can(ctx, guest, Action.BOARD_VIEW, board)
    assert not await policy.can(ctx, guest, Action.BOARD_EDIT, board)
    await grant(ctx, ws, "board", board.id, guest, "editor")
    assert await policy.can(ctx, guest, Action.BOARD_EDIT, board)
    await ctx.db.execute("DELETE FROM board_members WHERE board_id = $1", board.id)
    await permissions_cache.invalidate_user(
        ctx, guest, ws, resource_type="board", resource_id=board.id
    )
    assert not await policy.can(ctx, guest, Action.BOARD_VIEW, board)


async def test_private_flag_of_a_board_reaches_its_documents(api, ctx):
    workspace, users = await workspace_with(api, ctx, "member")
    ws, member = workspace["id"], users["member"].id
    board_id = await insert_board(ctx, ws)
    document = Resource.document(await insert_document(ctx, ws, board_id=board_id))
    for _ in range(2):
        assert await policy.can(ctx, member, Action.DOCUMENT_EDIT, document)
    await ctx.db.execute("UPDATE boards SET is_private = true WHERE id = $1", board_id)
    await permissions_cache.invalidate_resource(ctx, "board", board_id, ws)
    assert not await policy.can(ctx, member, Action.DOCUMENT_VIEW, document)


async def test_a_decision_loaded_before_a_change_is_never_trusted_after_it(api, ctx):
    """The race: a reader reads the stamp, the change commits and bumps, the reader stores what
    it loaded before the change. That entry carries the old stamp and is ignored."""
    workspace, users = await workspace_with(api, ctx, "member")
    ws, member = workspace["id"], users["member"].id
    resource = Resource.workspace(ws)
    before = await permissions_cache.lookup(ctx, member, "workspace", ws)
    assert before is not None and before.value is None and before.stamp is not None
    stale = await policy.load_facts(ctx.db, member, resource)
    await ctx.db.execute(
        "DELETE FROM workspace_members WHERE workspace_id = $1 AND user_id = $2", ws, member
    )
    await permissions_cache.invalidate_user(ctx, member, ws)
    assert stale is not None
    stale_access = policy.decide(stale)
    await permissions_cache.store(
        ctx, member, "workspace", ws, ws, before.stamp, stale_access.to_cache()
    )
    after = await permissions_cache.lookup(ctx, member, "workspace", ws)
    assert after is not None and after.value is None
    assert (await policy.load_access(ctx, member, resource)).workspace_role is None


async def test_lost_generation_tokens_invalidate_instead_of_reviving_old_entries(api, ctx):
    workspace, users = await workspace_with(api, ctx, "member")
    ws, member = workspace["id"], users["member"].id
    for _ in range(2):
        await policy.load_access(ctx, member, Resource.workspace(ws))
    assert (await permissions_cache.lookup(ctx, member, "workspace", ws)).value is not None
    keys = [workspace_generation_key(ws), user_generation_key(ws, member)]
    await ctx.cache.run(lambda r: r.delete(*keys))  # as if Redis evicted them
    assert (await permissions_cache.lookup(ctx, member, "workspace", ws)).value is None


async def test_other_users_keep_their_cached_decisions(api, ctx):
    workspace, users = await workspace_with(api, ctx, "admin", "member")
    ws = workspace["id"]
    for user in users.values():
        for _ in range(2):
            await policy.load_access(ctx, user.id, Resource.workspace(ws))
    await permissions_cache.invalidate_user(ctx, users["member"].id, ws)
    assert (await permissions_cache.lookup(ctx, users["member"].id, "workspace", ws)).value is None
    assert (
        await permissions_cache.lookup(ctx, users["admin"].id, "workspace", ws)
    ).value is not None


async def test_membership_changes_signal_open_websockets(api, ctx):
    workspace, users = await workspace_with(api, ctx, "member")
    ws, member = workspace["id"], users["member"].id
    board = await insert_board(ctx, ws)
    collector = await Collector().start(ctx, REVOCATION_SUBJECT)
    try:
        await api.patch(
            ws_path(ws, f"members/{member}/"), {"role": "guest"}, token=users["owner"].access_token
        )
        demoted, _ = await collector.wait_for(lambda r: r["user_id"] == member, within_s=1.0)
        await permissions_cache.invalidate_resource(ctx, "board", board, ws)
        flagged, _ = await collector.wait_for(lambda r: r["resource_id"] == board, within_s=1.0)
    finally:
        await collector.stop()
    assert demoted["kind"] == "permission"
    assert (demoted["workspace_id"], demoted["resource_id"]) == (ws, None)
    assert flagged["user_id"] == permissions_cache.ANY_USER
    assert (flagged["resource_type"], flagged["workspace_id"]) == ("board", ws)


@pytest.fixture
def redis_down(ctx, monkeypatch):
    """Point the node's Redis client at a dead port (as the auth tests do); restore after."""
    monkeypatch.setattr(permissions_cache, "BUMP_RETRY_FIRST_S", 0.05)
    monkeypatch.setattr(permissions_cache, "BUMP_RETRY_MAX_S", 0.1)
    original = ctx.cache.client

    class Switch:
        async def down(self) -> None:
            ctx.cache.client = type(original).from_url(
                "redis://127.0.0.1:1/0", socket_timeout=0.2, socket_connect_timeout=0.2
            )

        async def up(self) -> None:
            await ctx.cache.client.aclose()
            ctx.cache.client = original
            ctx.cache._open_until = 0.0  # close the breaker now instead of in 2 s

    switch = Switch()
    yield switch
    if ctx.cache.client is not original:
        ctx.cache.client = original
        ctx.cache._open_until = 0.0


async def test_redis_down_decides_from_postgres_never_allow(api, ctx, redis_down):
    workspace, users = await workspace_with(api, ctx, "admin", "member", "guest")
    ws, member, guest = workspace["id"], users["member"], users["guest"]
    outsider = await fast_user(ctx, "outsider")
    board = Resource.board(await insert_board(ctx, ws, private=True))
    for _ in range(2):  # cached while Redis is up
        assert (await api.get(ws_path(ws), token=member.access_token)).status == 200
    old_token = await redis_get(ctx, user_generation_key(ws, member.id))
    await redis_down.down()

    assert (await api.get(ws_path(ws), token=member.access_token)).status == 200
    assert (await api.get(ws_path(ws), token=outsider.access_token)).status == 404
    assert not await policy.can(ctx, guest.id, Action.BOARD_VIEW, board)
    assert (await policy.load_access(ctx, users["admin"].id, board)).resource_role == (
        ResourceRole.MANAGER
    )
    removed = await api.delete(
        ws_path(ws, f"members/{member.id}/"), token=users["admin"].access_token
    )
    assert removed.status == 204
    assert (await api.get(ws_path(ws), token=member.access_token)).status == 404

    # Redis is back with the member's pre-removal entry still in it: the bump that failed during
    # the outage is retried in the background, so that entry is not trusted again.
    retries = [t for t in ctx._background if t.get_name() == "permission-cache-bump-retry"]
    assert retries
    await redis_down.up()
    await asyncio.wait_for(asyncio.gather(*retries), 2)
    assert await redis_get(ctx, user_generation_key(ws, member.id)) != old_token
    assert await redis_get(ctx, entry_key(member.id, "workspace", ws)) is not None
    assert (await api.get(ws_path(ws), token=member.access_token)).status == 404


@pytest.mark.parametrize("bad", ["nope", "", "1 OR 1=1", "00000000-0000-0000-0000-00000000000g"])
async def test_ids_that_are_not_uuids_name_nothing(api, ctx, bad):
    user = await fast_user(ctx)
    for resource in (Resource.workspace(bad), Resource.board(bad), Resource.document(bad)):
        assert await policy.load_access(ctx, user.id, resource) is None
    workspace, users = await workspace_with(api, ctx)
    upper = Resource.workspace(workspace["id"].upper())
    assert (await policy.load_access(ctx, users["owner"].id, upper)).workspace_role is not None
