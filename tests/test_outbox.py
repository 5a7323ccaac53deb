"""The one after-commit outbox: the unit of work stages, checks and publishes every event kind."""

from __future__ import annotations

import uuid

import pytest

from bus import outbox
from bus.events import EventSchemaError
from bus.jetstream import workspace_activity_subject
from services import activity
from services.unit_of_work import unit_of_work
from tests.board_helpers import board_world, create_list
from tests.ws_helpers import Collector, create_workspace, fast_user


async def outbox_rows(ctx, event_id: str) -> list[dict]:
    rows = await ctx.db.fetch(
        "SELECT kind, payload, processed_at FROM outbox WHERE payload->'event'->>'id' = $1",
        event_id,
    )
    return [dict(r) for r in rows]


class Boom(Exception):
    pass


async def test_an_event_is_published_after_the_commit_and_its_row_marked(api, ctx):
    owner = await fast_user(ctx)
    ws = (await create_workspace(api, owner))["id"]
    collector = await Collector().start(ctx, workspace_activity_subject(ws))
    seen_on_commit: list[int] = []
    try:
        async with unit_of_work(ctx) as uow:
            event = activity.event(ws, "thing.happened", owner.id, {"n": 1})
            await uow.emit(event)
            # Runs after the commit and before the publish: nothing is on the subject yet.
            uow.on_commit(lambda: _record(seen_on_commit, collector))
        assert seen_on_commit == [0]
        received, headers = await collector.wait_for(lambda e: e["id"] == event.body["id"])
    finally:
        await collector.stop()
    assert received == event.body
    assert headers["Nats-Msg-Id"] == event.msg_id == event.body["id"]
    [row] = await outbox_rows(ctx, event.body["id"])
    assert row["kind"] == "activity_event" and row["processed_at"] is not None


async def _record(seen: list[int], collector: Collector) -> None:
    seen.append(len(collector.messages))


async def test_a_rolled_back_unit_of_work_stores_publishes_and_runs_nothing(api, ctx):
    owner = await fast_user(ctx)
    ws = (await create_workspace(api, owner))["id"]
    ran: list[str] = []
    collector = await Collector().start(ctx, workspace_activity_subject(ws))
    event = activity.event(ws, "thing.happened", owner.id, {"n": 2})
    try:
        with pytest.raises(Boom):
            async with unit_of_work(ctx) as uow:
                await uow.emit(event)
                uow.on_commit(lambda: _append(ran, "callback"))
                raise Boom
        await ctx.outbox.sweep(min_age_s=0)
        await ctx.nats.nc.flush()
    finally:
        await collector.stop()
    assert ran == []
    assert await outbox_rows(ctx, event.body["id"]) == []
    assert [m for m, _ in collector.messages if m["id"] == event.body["id"]] == []


async def _append(items: list[str], item: str) -> None:
    items.append(item)


async def test_a_bad_event_fails_at_emit_and_rolls_the_change_back(api, ctx):
    owner = await fast_user(ctx)
    ws = (await create_workspace(api, owner))["id"]
    marker = f"outbox-{uuid.uuid4().hex[:8]}"
    bad = outbox.activity_event(
        {"type": "thing.happened", "id": "not-a-uuid", "workspace_id": ws, "data": {}}
    )
    with pytest.raises(EventSchemaError):
        async with unit_of_work(ctx) as uow:
            await uow.conn.execute("UPDATE workspaces SET name = $1 WHERE id = $2", marker, ws)
            await uow.emit(bad)
    name = await ctx.db.fetchval("SELECT name FROM workspaces WHERE id = $1", ws)
    assert name != marker


async def test_a_board_event_and_its_activity_copy_are_staged_in_one_transaction(api, ctx):
    """The activity copy is an outbox row written with the board event, not a second publish
    made by the board relay: both are in Postgres once the change commits."""
    world = await board_world(api, ctx)
    lst = await create_list(api, world.users["owner"], world.board_id)
    seq = await ctx.db.fetchval(
        "SELECT seq FROM board_events WHERE board_id = $1 AND type = 'list.created'"
        " AND payload->'entity'->>'id' = $2",
        world.board_id,
        lst["id"],
    )
    board_event = await ctx.db.fetchval(
        "SELECT payload FROM board_events WHERE board_id = $1 AND seq = $2", world.board_id, seq
    )
    [copy] = await outbox_rows(ctx, board_event["id"])
    assert copy["kind"] == "activity_event"
    assert copy["payload"]["msg_id"] == f"activity:board:{world.board_id}:{seq}"
    assert copy["payload"]["event"]["data"]["seq"] == seq
    assert copy["payload"]["event"]["type"] == "list.created"


async def test_rows_staged_before_message_ids_were_stored_still_relay(api, ctx):
    """Outbox rows written by the previous release carry no `msg_id`: the event id is used."""
    owner = await fast_user(ctx)
    ws = (await create_workspace(api, owner))["id"]
    body = activity.build_event(ws, "thing.happened", owner.id, {"n": 3})
    await ctx.db.execute(
        "INSERT INTO outbox (kind, payload) VALUES ('activity_event', $1)",
        {"subject": workspace_activity_subject(ws), "event": body},
    )
    collector = await Collector().start(ctx, workspace_activity_subject(ws))
    try:
        assert await ctx.outbox.sweep(min_age_s=0) >= 1
        _, headers = await collector.wait_for(lambda e: e["id"] == body["id"])
    finally:
        await collector.stop()
    assert headers["Nats-Msg-Id"] == body["id"]
