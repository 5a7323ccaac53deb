"""Board socket: auth at the handshake, live events, `since` resume on two nodes, revocation,
presence, bad frames, shutdown."""

from __future__ import annotations

import asyncio

import pytest

from bus.schemas.board_events import BoardEventSchema
from tests.board_helpers import (
    BoardSocket,
    board_path,
    board_world,
    create_card,
    create_list,
    second_node,
)

_event_schema = BoardEventSchema()


@pytest.mark.parametrize(
    ("role", "query", "code"),
    [
        (None, "", 4401),
        ("bad", "", 4401),
        ("outsider", "", 4404),
        ("guest", "", 4403),
        ("viewer", "since=-1", 4400),
        ("viewer", "since=abc", 4400),
    ],
)
async def test_handshake_rejections(api, ctx, http_server_port, role, query, code):
    world = await board_world(api, ctx)
    token = {None: None, "bad": "not.a.jwt"}.get(role) or (role and world.token(role))
    sock = await BoardSocket.connect(http_server_port[1], world.board_id, token, query=query)
    assert (await sock.closed())[0] == code


async def test_unknown_board_and_bad_id(api, ctx, http_server_port):
    world = await board_world(api, ctx)
    port = http_server_port[1]
    for board_id in ("not-a-uuid", "00000000-0000-0000-0000-000000000000"):
        sock = await BoardSocket.connect(port, board_id, world.token("owner"))
        assert (await sock.closed())[0] == 4404


async def test_token_in_header_and_subprotocol(api, ctx, http_server_port):
    world = await board_world(api, ctx)
    port, token = http_server_port[1], world.token("viewer")
    by_header = await BoardSocket.connect(
        port, world.board_id, None, headers={"Authorization": f"Bearer {token}"}
    )
    await by_header.ready()
    by_protocol = await BoardSocket.connect(
        port, world.board_id, None, subprotocols=["collab", token]
    )
    await by_protocol.ready()
    assert by_protocol.conn.selected_subprotocol == "collab"
    by_header.close()
    by_protocol.close()


async def test_viewer_receives_every_mutation_in_order(api, ctx, http_server_port):
    world = await board_world(api, ctx)
    sock = await BoardSocket.connect(http_server_port[1], world.board_id, world.token("viewer"))
    ready = await sock.ready()
    assert ready["seq"] == world.board["event_seq"] + 2  # the two viewer grants
    editor = world.users["member"]
    lst = await create_list(api, editor, world.board_id, "Todo")
    card = await create_card(api, editor, lst["id"], "One")
    moved = await api.post(
        f"/api/v1/cards/{card['id']}/move/", {"list_id": lst["id"]}, token=editor.access_token
    )
    assert moved.status == 200
    events = [await sock.event() for _ in range(3)]
    assert [e["type"] for e in events] == ["list.created", "card.created", "card.moved"]
    assert [e["seq"] for e in events] == [ready["seq"] + 1, ready["seq"] + 2, ready["seq"] + 3]
    for event in events:
        assert _event_schema.validate(event) == {}
        assert event["board_id"] == world.board_id and event["actor_id"] == editor.id
    assert events[1]["entity"] == card
    sock.close()


async def test_since_resume_across_two_nodes(api, ctx, settings, http_server_port):
    """Missed events are delivered exactly once, in order, by another node; then live ones."""
    world = await board_world(api, ctx)
    owner = world.users["owner"]
    lst = await create_list(api, owner, world.board_id, "Todo")
    first = await BoardSocket.connect(http_server_port[1], world.board_id, world.token("viewer"))
    seen = (await first.ready())["seq"]
    first.close()
    async with second_node(settings) as (node, api2):
        missed = [await create_card(api2, owner, lst["id"], f"c{i}") for i in range(4)]
        resumed = await BoardSocket.connect(
            node.port, world.board_id, world.token("viewer"), since=seen
        )
        replay = [await resumed.event() for _ in range(4)]
        assert [e["seq"] for e in replay] == list(range(seen + 1, seen + 5))
        assert [e["entity"]["id"] for e in replay] == [c["id"] for c in missed]
        assert (await resumed.ready())["seq"] == seen + 4
        live = await create_card(api, owner, lst["id"], "live")  # on node 1
        event = await resumed.event()
        assert (event["seq"], event["entity"]["id"]) == (seen + 5, live["id"])
        types = [f["type"] for f in resumed.frames]
        assert types.count("event") == 5  # nothing twice
        resumed.close()


async def test_resume_too_far_behind_or_ahead_gets_refetch(api, ctx, settings):
    world = await board_world(api, ctx)
    owner = world.users["owner"]
    lst = await create_list(api, owner, world.board_id)
    for i in range(3):
        await create_card(api, owner, lst["id"], f"c{i}")
    async with second_node(settings, board_replay_max_events=2) as (node, _):
        behind = await BoardSocket.connect(node.port, world.board_id, owner.access_token, since=0)
        refetch = await behind.next()
        assert refetch["type"] == "refetch" and refetch["reason"] == "too_far_behind"
        await behind.ready()
        ahead = await BoardSocket.connect(
            node.port, world.board_id, owner.access_token, since=10_000
        )
        assert (await ahead.next())["reason"] == "ahead_of_board"
        # Live events still flow after a refetch.
        card = await create_card(api, owner, lst["id"], "after")
        assert (await behind.event("card.created"))["entity"]["id"] == card["id"]
        behind.close()
        ahead.close()


async def test_revoked_grant_closes_sockets_on_every_node(api, ctx, settings, http_server_port):
    world = await board_world(api, ctx)
    guest = world.users["guest_viewer"]
    here = await BoardSocket.connect(http_server_port[1], world.board_id, guest.access_token)
    await here.ready()
    async with second_node(settings) as (node, _):
        there = await BoardSocket.connect(node.port, world.board_id, guest.access_token)
        await there.ready()
        revoked = await api.delete(
            board_path(world.board_id, f"members/{guest.id}/"), token=world.token("owner")
        )
        assert revoked.status == 204
        assert (await here.closed())[0] == 4403
        assert (await there.closed())[0] == 4403


async def test_board_made_private_closes_plain_members(api, ctx, http_server_port):
    world = await board_world(api, ctx)
    member = await BoardSocket.connect(http_server_port[1], world.board_id, world.token("member"))
    await member.ready()
    viewer = await BoardSocket.connect(http_server_port[1], world.board_id, world.token("viewer"))
    await viewer.ready()
    changed = await api.patch(
        board_path(world.board_id), {"is_private": True}, token=world.token("owner")
    )
    assert changed.status == 200
    assert (await member.closed())[0] == 4403
    # The viewer has an explicit grant: still connected, and told about the change.
    assert (await viewer.event("board.updated"))["entity"]["is_private"] is True
    viewer.close()


async def test_deleted_board_closes_sockets_and_logout_closes_session(api, ctx, http_server_port):
    world = await board_world(api, ctx)
    port = http_server_port[1]
    viewer = await BoardSocket.connect(port, world.board_id, world.token("viewer"))
    await viewer.ready()
    member = await BoardSocket.connect(port, world.board_id, world.token("member"))
    await member.ready()
    logout = await api.post("/api/v1/auth/logout/", token=world.token("member"))
    assert logout.status == 204
    assert (await member.closed())[0] == 4401
    deleted = await api.delete(board_path(world.board_id), token=world.token("owner"))
    assert deleted.status == 204
    assert (await viewer.closed())[0] == 4404


async def test_presence_between_viewers(api, ctx, http_server_port):
    world = await board_world(api, ctx)
    port = http_server_port[1]
    owner = world.users["owner"]
    lst = await create_list(api, owner, world.board_id)
    card = await create_card(api, owner, lst["id"])
    alice = await BoardSocket.connect(port, world.board_id, owner.access_token)
    await alice.ready()
    await alice.next(lambda f: f["type"] == "presence" and f["state"] == "snapshot")
    bob = await BoardSocket.connect(port, world.board_id, world.token("viewer"))
    await bob.ready()
    # Alice sees Bob arrive; Bob's snapshot lists Alice.
    arrived = await alice.next(lambda f: f["type"] == "presence" and f["state"] == "viewing")
    assert arrived["user_id"] == world.users["viewer"].id
    snapshot = await bob.next(lambda f: f["type"] == "presence" and f["state"] == "snapshot")
    assert owner.id in {v["user_id"] for v in snapshot["viewers"]}
    await alice.conn.write_message(f'{{"type":"presence","card_id":"{card["id"]}"}}')
    opened = await bob.next(lambda f: f["type"] == "presence" and f.get("card_id"))
    assert (opened["user_id"], opened["card_id"]) == (owner.id, card["id"])
    alice.close()
    left = await bob.next(lambda f: f["type"] == "presence" and f["state"] == "left")
    assert left["user_id"] == owner.id
    bob.close()


@pytest.mark.parametrize(
    ("frame", "code"),
    [
        ("not json", "bad_json"),
        ("[1, 2]", "bad_frame"),
        ('{"type": "shout"}', "unknown_type"),
        ('{"type": "presence", "card_id": "nope"}', "bad_frame"),
        ('{"type": "presence"}', "bad_frame"),
        (b"\x00\x01", "bad_frame"),
    ],
)
async def test_bad_frames_get_errors_and_keep_the_socket(api, ctx, http_server_port, frame, code):
    world = await board_world(api, ctx)
    sock = await BoardSocket.connect(http_server_port[1], world.board_id, world.token("viewer"))
    await sock.ready()
    await sock.conn.write_message(frame, binary=isinstance(frame, bytes))
    error = await sock.next(lambda f: f["type"] == "error")
    assert error["code"] == code
    await sock.conn.write_message('{"type":"ping"}')
    assert (await sock.next(lambda f: f["type"] == "pong"))["type"] == "pong"
    sock.close()


async def test_oversized_frame_closes_and_a_flood_is_paced(api, ctx, http_server_port):
    """A frame over 4 KiB closes 1009; 60 pings at once (10/s, bursts of 20) are all answered,
    slowed down by back-pressure, none dropped, the socket kept."""
    world = await board_world(api, ctx)
    port = http_server_port[1]
    big = await BoardSocket.connect(port, world.board_id, world.token("viewer"))
    await big.ready()
    await big.conn.write_message('{"type":"ping","pad":"' + "x" * 10_000 + '"}')
    assert (await big.closed())[0] == 1009
    flood = await BoardSocket.connect(port, world.board_id, world.token("viewer"))
    await flood.ready()
    started = asyncio.get_running_loop().time()
    for _ in range(60):
        await flood.conn.write_message('{"type":"ping"}')
    for _ in range(60):
        await flood.next(lambda f: f["type"] in ("pong", "error"), within_s=20)
    assert [f["type"] for f in flood.frames if f["type"] in ("pong", "error")] == ["pong"] * 60
    assert asyncio.get_running_loop().time() - started >= (60 - 20) / 10 * 0.9  # the rate held
    flood.close()


async def test_node_shutdown_closes_sockets_with_1001(api, ctx, settings):
    world = await board_world(api, ctx)
    async with second_node(settings) as (node, _):
        sock = await BoardSocket.connect(node.port, world.board_id, world.token("viewer"))
        await sock.ready()
        stopping = asyncio.ensure_future(node.stop())
        assert (await sock.closed())[0] == 1001
        await stopping


async def test_socket_closes_when_its_token_expires(api, ctx, settings, http_server_port):
    """S9: a long-lived socket does not outlive its access token."""
    import dataclasses

    from models.repo import users as users_repo
    from services import tokens

    world = await board_world(api, ctx)
    viewer = world.users["viewer"]
    family = await users_repo.create_family(ctx.db, viewer.id)
    short = tokens.issue(
        dataclasses.replace(settings, access_token_ttl_s=2), "access", viewer.id, family
    )
    sock = await BoardSocket.connect(http_server_port[1], world.board_id, short.token)
    await sock.ready()
    code, reason = await sock.closed(within_s=5)
    assert code == 4401 and "expired" in reason
