"""Concurrent moves: a consistent total order, no duplicate positions, a gapless event sequence."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import tornado.httpclient

from tests.board_helpers import board_world, create_card, create_list

CONNECTIONS = 5
MOVES = 50


async def _post_all(port: int, token: str, requests: list[tuple[str, dict]]) -> list[Any]:
    """Send all requests at once over several independent HTTP clients (separate connections)."""
    clients = [
        tornado.httpclient.AsyncHTTPClient(force_instance=True, max_clients=MOVES)
        for _ in range(CONNECTIONS)
    ]
    try:
        return await asyncio.gather(
            *(
                clients[i % CONNECTIONS].fetch(
                    f"http://127.0.0.1:{port}{path}",
                    method="POST",
                    body=json.dumps(body),
                    headers={
                        "Authorization": f"Bearer {token}",
                        "Content-Type": "application/json",
                    },
                    raise_error=False,
                )
                for i, (path, body) in enumerate(requests)
            )
        )
    finally:
        for client in clients:
            client.close()


async def test_fifty_concurrent_moves_into_one_list(api, ctx, http_server_port):
    world = await board_world(api, ctx)
    owner = world.users["owner"]
    source = await create_list(api, owner, world.board_id, "Source")
    target = await create_list(api, owner, world.board_id, "Target")
    first = await create_card(api, owner, target["id"], "first")
    last = await create_card(api, owner, target["id"], "last")
    cards = [await create_card(api, owner, source["id"], f"m{i}") for i in range(MOVES)]
    seq_before = await ctx.db.fetchval("SELECT event_seq FROM boards WHERE id = $1", world.board_id)
    # Everyone aims at the same gap (right after `first`), or at the list's ends.
    placements = [
        {"after_id": first["id"]},
        {"before_id": last["id"]},
        {"after_id": first["id"], "before_id": last["id"]},
        {},
    ]
    requests = [
        (
            f"/api/v1/cards/{card['id']}/move/",
            {"list_id": target["id"], **placements[i % len(placements)]},
        )
        for i, card in enumerate(cards)
    ]
    responses = await _post_all(http_server_port[1], owner.access_token, requests)
    statuses = [r.code for r in responses]
    # Both neighbours given: only valid while they are still adjacent (409 stale_placement).
    for i, response in enumerate(responses):
        if "before_id" in placements[i % 4] and "after_id" in placements[i % 4]:
            assert response.code in (200, 409), response.body
        else:
            assert response.code == 200, response.body
    moved = {json.loads(r.body)["id"] for r in responses if r.code == 200}

    rows = await ctx.db.fetch(
        "SELECT id, position FROM cards WHERE list_id = $1 ORDER BY position", target["id"]
    )
    positions = [r["position"] for r in rows]
    assert len(set(positions)) == len(positions)  # no duplicates
    assert positions == sorted(positions)  # byte order = display order
    ids = [str(r["id"]) for r in rows]
    assert ids[0] == first["id"] or ids.index(first["id"]) < ids.index(last["id"])
    assert moved <= set(ids) and len(ids) == 2 + len(moved)
    board = await api.get(f"/api/v1/boards/{world.board_id}/", token=owner.access_token)
    listed = next(lst for lst in board.body["lists"] if lst["id"] == target["id"])
    assert [c["id"] for c in listed["cards"]] == ids

    # One event per successful move, numbered without a gap, in commit order.
    seqs = [
        r["seq"]
        for r in await ctx.db.fetch(
            "SELECT seq FROM board_events WHERE board_id = $1 AND seq > $2 ORDER BY seq",
            world.board_id,
            seq_before,
        )
    ]
    assert seqs == list(range(seq_before + 1, seq_before + 1 + statuses.count(200)))


async def test_concurrent_moves_of_one_card_with_one_version(api, ctx, http_server_port):
    """Optimistic concurrency under a race: exactly one mover wins, the others get 409."""
    world = await board_world(api, ctx)
    owner = world.users["owner"]
    lists = [await create_list(api, owner, world.board_id, f"L{i}") for i in range(4)]
    card = await create_card(api, owner, lists[0]["id"])
    requests = [
        (f"/api/v1/cards/{card['id']}/move/", {"list_id": lst["id"], "version": 1})
        for lst in lists[1:]
        for _ in range(3)
    ]
    responses = await _post_all(http_server_port[1], owner.access_token, requests)
    codes = sorted(r.code for r in responses)
    assert codes == [200] + [409] * (len(requests) - 1)
    conflict = next(json.loads(r.body) for r in responses if r.code == 409)
    assert conflict["error"]["code"] == "version_conflict"
    assert conflict["current"]["version"] == 2
