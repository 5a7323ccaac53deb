"""Activity event schema (open to other areas' types) and the outbox relay."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

import pytest

from bus import outbox
from bus.events import EventSchemaError
from bus.jetstream import workspace_activity_subject
from bus.schemas.activity import ActivityEventSchema
from services import activity
from tests.ws_helpers import Collector, create_workspace, fast_user


def envelope(event_type: str, data: dict, **extra) -> dict:
    return {
        "type": event_type,
        "id": str(uuid.uuid4()),
        "workspace_id": str(uuid.uuid4()),
        "actor_id": str(uuid.uuid4()),
        "at": datetime.now(UTC).isoformat(),
        "data": data,
        **extra,
    }


@pytest.mark.parametrize(
    "event_type,data",
    [
        (
            "member.role_changed",
            {"user_id": str(uuid.uuid4()), "old_role": "guest", "new_role": "admin"},
        ),
        ("board.created", {"board_id": "anything", "name": "Roadmap"}),
        ("card.moved", {"from_list": 1, "to_list": 2}),
        ("list.archived", {}),
    ],
)
def test_schema_accepts_known_and_other_areas_types(event_type, data):
    assert ActivityEventSchema().validate(envelope(event_type, data)) == {}


@pytest.mark.parametrize(
    "event",
    [
        envelope("member.role_changed", {"user_id": "x", "old_role": "guest", "new_role": "admin"}),
        envelope("member.role_changed", {"user_id": str(uuid.uuid4()), "old_role": "boss"}),
        envelope("invitation.created", {}),
        envelope("Board.Created", {}),
        envelope("board", {}),
        envelope("board.created.extra", {}),
        envelope("board.created", {}, secret="leak"),
        envelope("board.created", "not an object"),
        {**envelope("board.created", {}), "id": "nope"},
        {**envelope("board.created", {}), "at": "yesterday"},
    ],
)
def test_schema_rejects_malformed_events(event):
    assert ActivityEventSchema().validate(event) != {}


def test_an_emit_site_building_a_bad_event_fails_loudly():
    with pytest.raises(EventSchemaError):
        activity.build_event(str(uuid.uuid4()), "member.added", None, {"user_id": "not-a-uuid"})


async def test_relay_publishes_events_whose_inline_publish_did_not_happen(api, ctx):
    owner = await fast_user(ctx)
    workspace = await create_workspace(api, owner)
    ws = workspace["id"]
    # Staged and committed, but never published inline (as when NATS was down at that moment).
    async with ctx.db.transaction() as conn:
        staged = await outbox.stage(
            conn, activity.event(ws, "board.created", owner.id, {"name": "Roadmap"})
        )
    collector = await Collector().start(ctx, workspace_activity_subject(ws))
    try:
        assert await ctx.outbox.sweep() == 0  # too fresh: its request may still publish
        assert await ctx.outbox.sweep(min_age_s=0) >= 1
        event, headers = await collector.wait_for(lambda e: e["id"] == staged.event.body["id"])
    finally:
        await collector.stop()
    assert event == staged.event.body
    assert headers["Nats-Msg-Id"] == staged.event.body["id"]
    processed = await ctx.db.fetchval(
        "SELECT processed_at IS NOT NULL FROM outbox WHERE id = $1", staged.row_id
    )
    assert processed
