"""The board feed without a socket: slow readers, gap filling from Postgres, the OpenAPI entries."""

from __future__ import annotations

import time

from core.errors import CloseCode
from live.board_feed import MAX_PENDING_BYTES, BoardConnection
from live.hub import Identity
from server.app import build_context
from services import cards as cards_service
from tests.board_helpers import BoardSocket, board_world, create_list


class StuckTransport:
    """A client that never reads: every frame stays unsent."""

    def __init__(self) -> None:
        self.closed_with: tuple[int, str] | None = None
        self.unsent = 0

    def send(self, frame: bytes | str) -> None:
        self.unsent += len(frame)

    def unsent_bytes(self) -> int:
        return self.unsent

    def close(self, code: int, reason: str) -> None:
        self.closed_with = (code, reason)


async def test_slow_reader_is_closed_when_its_unsent_bytes_pass_the_bound(ctx):
    """The one slow-reader rule of every socket (live/hub.py): 1008, as on documents (it was
    4408 with a 256-frame queue before the board socket moved onto the hub)."""
    transport = StuckTransport()
    identity = Identity("u", "U", "f", "t", int(time.time()) + 60)
    conn = BoardConnection(ctx.board_feed, "b", identity, transport)
    conn.go_live()
    event = {"type": "card.updated", "entity": {"title": "x" * 1000}}
    seq = 0
    while not conn.closed and seq < 10 * MAX_PENDING_BYTES // 1000:
        seq += 1
        conn.deliver({**event, "seq": seq})
    assert transport.closed_with is not None
    assert transport.closed_with[0] == CloseCode.SLOW_READER == 1008
    assert MAX_PENDING_BYTES - 1100 < transport.unsent <= MAX_PENDING_BYTES


async def test_room_fills_a_gap_from_postgres(api, ctx, settings, http_server_port):
    """An event arriving before its predecessor was published: the room sends the missing one
    (from Postgres) first, so the socket still sees every seq once, in order."""
    world = await board_world(api, ctx)
    owner = world.users["owner"]
    lst = await create_list(api, owner, world.board_id)
    sock = await BoardSocket.connect(http_server_port[1], world.board_id, world.token("viewer"))
    start = (await sock.ready())["seq"]
    cut_off = build_context(settings)
    await cut_off.start()
    try:
        await cut_off.nats.nc.close()
        for title in ("one", "two"):
            await cards_service.create_card(
                cut_off, owner.id, lst["id"], cards_service.NewCard(title)
            )
        await cut_off.outbox.wait_idle()
    finally:
        await cut_off.stop()
    second = await ctx.db.fetchval(
        "SELECT payload FROM board_events WHERE board_id = $1 AND seq = $2",
        world.board_id,
        start + 2,
    )
    room = ctx.board_feed.rooms[world.board_id]
    await room.apply(second)  # as if JetStream had delivered seq+2 first
    events = [await sock.event() for _ in range(2)]
    assert [e["seq"] for e in events] == [start + 1, start + 2]
    assert [e["entity"]["title"] for e in events] == ["one", "two"]
    # The late publish of both (the sweep) is deduplicated by seq.
    await ctx.outbox.sweep(min_age_s=0)
    await ctx.outbox.wait_idle()
    await sock.conn.write_message('{"type":"ping"}')
    await sock.next(lambda f: f["type"] == "pong")
    assert [f["type"] for f in sock.frames].count("event") == 2
    sock.close()


async def test_openapi_documents_every_board_endpoint(api):
    spec = (await api.get("/api/v1/openapi.json")).body
    expected = {
        "/api/v1/boards/": {"post"},
        "/api/v1/boards/{board_id}/": {"get", "patch", "delete"},
        "/api/v1/boards/{board_id}/archive/": {"post"},
        "/api/v1/boards/{board_id}/unarchive/": {"post"},
        "/api/v1/boards/{board_id}/members/": {"get"},
        "/api/v1/boards/{board_id}/members/{user_id}/": {"put", "delete"},
        "/api/v1/boards/{board_id}/labels/": {"post"},
        "/api/v1/labels/{label_id}/": {"patch", "delete"},
        "/api/v1/boards/{board_id}/lists/": {"post"},
        "/api/v1/lists/{list_id}/": {"patch"},
        "/api/v1/lists/{list_id}/move/": {"post"},
        "/api/v1/lists/{list_id}/archive/": {"post"},
        "/api/v1/lists/{list_id}/unarchive/": {"post"},
        "/api/v1/lists/{list_id}/cards/": {"post"},
        "/api/v1/cards/{card_id}/": {"get", "patch", "delete"},
        "/api/v1/cards/{card_id}/archive/": {"post"},
        "/api/v1/cards/{card_id}/unarchive/": {"post"},
        "/api/v1/cards/{card_id}/move/": {"post"},
        "/api/v1/cards/{card_id}/checklist/": {"post"},
        "/api/v1/checklist-items/{item_id}/": {"patch", "delete"},
        "/ws/boards/{board_id}/": {"get"},
    }
    for path, methods in expected.items():
        assert path in spec["paths"], path
        assert set(spec["paths"][path]) >= methods, path
    card_move = spec["paths"]["/api/v1/cards/{card_id}/move/"]["post"]
    assert "requestBody" in card_move and "409" in card_move["responses"]
    schemas = spec["components"]["schemas"]
    assert {"BoardDetail", "Card", "CardMove"} <= set(schemas)
