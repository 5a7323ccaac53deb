"""Board events on JetStream: one per mutation, schema-valid, headers, the activity copy, a gapless
sequence, and no loss when the publish fails."""

from __future__ import annotations

from typing import Any

from nats.js.api import DeliverPolicy

from bus.jetstream import EVENTS_STREAM, board_event_subject, workspace_activity_subject
from bus.schemas.activity import ActivityEventSchema
from bus.schemas.board_events import EVENT_TYPES, BoardEventSchema
from bus.schemas.doc_events import COMMENT_ENTITY_SCHEMAS
from server.app import build_context
from services import cards as cards_service
from tests.board_helpers import board_path, board_world, create_card, create_list
from tests.ws_helpers import Collector

_board_schema = BoardEventSchema()
_activity_schema = ActivityEventSchema()


async def stored_events(ctx: Any, board_id: str, count: int) -> list[tuple[dict, dict]]:
    """The first `count` messages JetStream holds on the board's subject (payload, headers)."""
    import json

    sub = await ctx.nats.jetstream.subscribe(
        board_event_subject(board_id),
        stream=EVENTS_STREAM,
        ordered_consumer=True,
        deliver_policy=DeliverPolicy.ALL,
    )
    try:
        out = []
        for _ in range(count):
            msg = await sub.next_msg(timeout=5)
            out.append((json.loads(msg.data), dict(msg.headers or {})))
        return out
    finally:
        await sub.unsubscribe()


async def subject_count(ctx: Any, subject: str) -> int:
    info = await ctx.nats.jetstream.stream_info(EVENTS_STREAM, subjects_filter=subject)
    return (info.state.subjects or {}).get(subject, 0)


async def _every_mutation(api: Any, world: Any) -> None:
    """One call of each kind of board mutation (the rebalance excepted)."""
    owner = world.users["owner"].access_token

    async def call(method: str, path: str, body: Any = None) -> dict:
        response = await api.request(method, path, body, token=owner)
        assert response.status in (200, 201, 204), (path, response.body)
        return response.body

    board = world.board_id
    await call("PATCH", board_path(board), {"name": "Renamed"})
    lst = await call("POST", board_path(board, "lists/"), {"name": "A"})
    other = await call("POST", board_path(board, "lists/"), {"name": "B"})
    await call("PATCH", f"/api/v1/lists/{lst['id']}/", {"name": "A2"})
    await call("POST", f"/api/v1/lists/{other['id']}/move/", {"before_id": lst["id"]})
    label = await call("POST", board_path(board, "labels/"), {"name": "L", "color": "#000000"})
    await call("PATCH", f"/api/v1/labels/{label['id']}/", {"color": "#111111"})
    card = await call("POST", f"/api/v1/lists/{lst['id']}/cards/", {"title": "c"})
    await call("PATCH", f"/api/v1/cards/{card['id']}/", {"labels": [label["id"]]})
    await call("POST", f"/api/v1/cards/{card['id']}/move/", {"list_id": other["id"]})
    await call("POST", f"/api/v1/cards/{card['id']}/archive/")
    await call("POST", f"/api/v1/cards/{card['id']}/unarchive/")
    await call("DELETE", f"/api/v1/labels/{label['id']}/")
    await call("DELETE", f"/api/v1/cards/{card['id']}/")
    await call("POST", f"/api/v1/lists/{lst['id']}/archive/")
    await call("POST", f"/api/v1/lists/{lst['id']}/unarchive/")
    guest = world.users["guest"].id
    await call("PUT", board_path(board, f"members/{guest}/"), {"role": "viewer"})
    await call("DELETE", board_path(board, f"members/{guest}/"))
    await call("POST", board_path(board, "archive/"))
    await call("POST", board_path(board, "unarchive/"))
    await call("DELETE", board_path(board))


async def test_every_mutation_publishes_one_valid_event(api, ctx):
    world = await board_world(api, ctx)
    activity = await Collector().start(ctx, workspace_activity_subject(world.workspace["id"]))
    await _every_mutation(api, world)
    total = await ctx.db.fetchval("SELECT event_seq FROM boards WHERE id = $1", world.board_id)
    events = await stored_events(ctx, world.board_id, total)
    assert [e["seq"] for e, _ in events] == list(range(1, total + 1))
    for event, headers in events:
        assert _board_schema.validate(event) == {}, event
        assert headers["Nats-Msg-Id"] == f"board:{world.board_id}:{event['seq']}"
        assert headers["Collab-Board-Seq"] == str(event["seq"])
    kinds = {e["type"] for e, _ in events}
    # Comment threads on cards have their own tests (tests/test_comments_live.py).
    assert kinds == set(EVENT_TYPES) - {"positions.rebalanced"} - set(COMMENT_ENTITY_SCHEMAS)
    # The same events, as workspace activity (grants renamed so they cannot pass for workspace
    # membership events).
    deleted = await activity.wait_for(lambda e: e["type"] == "board.deleted")
    assert _activity_schema.validate(deleted[0]) == {}
    assert deleted[1]["Nats-Msg-Id"] == f"activity:board:{world.board_id}:{total}"
    assert deleted[0]["data"]["seq"] == total
    guest = world.users["guest"].id
    granted = await activity.wait_for(
        lambda e: e["type"] == "board_member.granted" and e["data"]["entity"]["user_id"] == guest
    )
    assert _activity_schema.validate(granted[0]) == {}
    assert not [m for m, _ in activity.messages if m["type"].startswith("member.")]
    await activity.stop()


async def test_failed_changes_use_no_sequence_number(api, ctx):
    world = await board_world(api, ctx)
    owner = world.users["owner"]
    lst = await create_list(api, owner, world.board_id)
    before = await ctx.db.fetchval("SELECT event_seq FROM boards WHERE id = $1", world.board_id)
    stale = await api.patch(
        board_path(world.board_id), {"name": "x", "version": 99}, token=owner.access_token
    )
    assert stale.status == 409
    blind = await api.post(
        f"/api/v1/lists/{lst['id']}/cards/",
        {"title": "x", "assignees": [world.users["outsider"].id]},
        token=owner.access_token,
    )
    assert blind.status == 400
    await create_card(api, owner, lst["id"])
    after = await ctx.db.fetchval("SELECT event_seq FROM boards WHERE id = $1", world.board_id)
    assert after == before + 1


async def test_events_survive_a_failed_publish(api, ctx, settings):
    """NATS unreachable at commit time: the change succeeds, its event waits in Postgres and a
    sweep (any node) publishes it later, once, in order."""
    world = await board_world(api, ctx)
    owner = world.users["owner"]
    lst = await create_list(api, owner, world.board_id)
    subject = board_event_subject(world.board_id)
    relay = ctx.outbox
    await relay.wait_idle()
    published_before = await subject_count(ctx, subject)
    cut_off = build_context(settings)
    await cut_off.start()
    try:
        await cut_off.nats.nc.close()
        card = await cards_service.create_card(
            cut_off, owner.id, lst["id"], cards_service.NewCard("offline")
        )
        await cut_off.outbox.wait_idle()
    finally:
        await cut_off.stop()
    pending = await ctx.db.fetchrow(
        "SELECT seq, published_at FROM board_events WHERE board_id = $1 ORDER BY seq DESC LIMIT 1",
        world.board_id,
    )
    assert pending["published_at"] is None
    assert await subject_count(ctx, subject) == published_before

    assert await relay.sweep(min_age_s=0) >= 1
    await relay.wait_idle()
    assert await subject_count(ctx, subject) == published_before + 1
    events = await stored_events(ctx, world.board_id, pending["seq"])
    assert events[-1][0]["entity"]["id"] == str(card.id)
    # A second republish (say, after a crash before marking) is deduplicated by JetStream.
    await ctx.db.execute(
        "UPDATE board_events SET published_at = NULL WHERE board_id = $1", world.board_id
    )
    await relay.sweep(min_age_s=0)
    await relay.wait_idle()
    assert await subject_count(ctx, subject) == published_before + 1
    unpublished = await ctx.db.fetchval(
        "SELECT count(*) FROM board_events WHERE board_id = $1 AND published_at IS NULL",
        world.board_id,
    )
    assert unpublished == 0


async def test_live_socket_gets_event_committed_during_outage_after_sweep(
    api, ctx, settings, http_server_port
):
    from tests.board_helpers import BoardSocket

    world = await board_world(api, ctx)
    owner = world.users["owner"]
    lst = await create_list(api, owner, world.board_id)
    sock = await BoardSocket.connect(http_server_port[1], world.board_id, world.token("viewer"))
    await sock.ready()
    cut_off = build_context(settings)
    await cut_off.start()
    try:
        await cut_off.nats.nc.close()
        card = await cards_service.create_card(
            cut_off, owner.id, lst["id"], cards_service.NewCard("late")
        )
        await cut_off.outbox.wait_idle()
    finally:
        await cut_off.stop()
    await ctx.outbox.sweep(min_age_s=0)
    event = await sock.event("card.created")
    assert event["entity"]["id"] == str(card.id)
    sock.close()
