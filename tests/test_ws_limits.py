"""Socket caps per node (RELIABILITY S6/S21, issue 17 item 3; live/admission.py): per user and
per client address, documents and boards counted together, and a client cap per document. A
socket over a cap is upgraded and closed at once with a code and a reason a person can act on
(4429 too many sockets, 1013 document full); closing a socket frees its place.
"""

from __future__ import annotations

import dataclasses
import uuid

import pytest

from tests.board_helpers import BoardSocket, board_world
from tests.realtime_support import RawSocket, document_with, second_node

pytestmark = pytest.mark.timeout(120)


async def _document_in(ctx, workspace_id: str, owner_id: str) -> str:  # type: ignore[no-untyped-def]
    return str(
        await ctx.db.fetchval(
            "INSERT INTO documents (workspace_id, title, created_by) VALUES ($1, $2, $3)"
            " RETURNING id",
            workspace_id,
            f"Doc {uuid.uuid4().hex[:6]}",
            owner_id,
        )
    )


async def _refused(sock: RawSocket) -> tuple[int | None, str]:
    code = await sock.wait_closed()
    return code, sock.close_reason or ""


async def test_per_user_cap_counts_documents_and_boards_together(api, ctx, settings) -> None:
    capped = dataclasses.replace(settings, ws_max_sockets_per_user=3)
    world = await board_world(api, ctx)
    owner = world.users["owner"]
    doc_id = await _document_in(ctx, world.workspace["id"], owner.id)
    async with second_node(capped) as node:
        board = await BoardSocket.connect(node.port, world.board_id, owner.access_token)
        await board.ready()
        docs = [await RawSocket.open(node.port, doc_id, owner.access_token) for _ in range(2)]
        for doc in docs:
            await doc.wait_for(lambda m: isinstance(m, bytes))  # SyncStep1: admitted

        fourth = await RawSocket.open(node.port, doc_id, owner.access_token)
        code, reason = await _refused(fourth)
        assert code == 4429
        assert "too many open sockets for this user" in reason and "3" in reason
        another_user = await RawSocket.open(node.port, doc_id, world.users["member"].access_token)
        await another_user.wait_for(lambda m: isinstance(m, bytes))  # a cap per user, not global

        board.close()
        await board.closed()
        again = await RawSocket.open(node.port, doc_id, owner.access_token)
        await again.wait_for(lambda m: isinstance(m, bytes))  # the board's place was freed
        for sock in (*docs, another_user, again):
            await sock.aclose()


async def test_per_address_cap(ctx, settings) -> None:
    capped = dataclasses.replace(settings, ws_max_sockets_per_ip=2)
    setup = await document_with(ctx, "editor", "member")
    async with second_node(capped) as node:
        first = await RawSocket.open(node.port, setup.doc_id, setup.users["editor"].access_token)
        second = await RawSocket.open(node.port, setup.doc_id, setup.users["member"].access_token)
        for sock in (first, second):
            await sock.wait_for(lambda m: isinstance(m, bytes))
        third = await RawSocket.open(node.port, setup.doc_id, setup.users["owner"].access_token)
        code, reason = await _refused(third)
        assert (code, reason) == (4429, "too many open sockets from this address (2 per server)")
        await first.aclose()
        await second.aclose()


async def test_per_document_client_cap(ctx, settings) -> None:
    capped = dataclasses.replace(settings, ws_max_clients_per_document=2)
    setup = await document_with(ctx, "editor")
    other = await _document_in(ctx, setup.workspace_id, setup.users["owner"].id)
    token = setup.users["editor"].access_token
    async with second_node(capped) as node:
        present = [await RawSocket.open(node.port, setup.doc_id, token) for _ in range(2)]
        for sock in present:
            await sock.wait_for(lambda m: isinstance(m, bytes))
        late = await RawSocket.open(node.port, setup.doc_id, token)
        code, reason = await _refused(late)
        assert code == 1013  # try again later: the stock provider reconnects with backoff
        assert reason == "document is full (2 clients on this server): try again later"
        elsewhere = await RawSocket.open(node.port, other, token)
        await elsewhere.wait_for(lambda m: isinstance(m, bytes))

        await present[0].aclose()
        retry = await RawSocket.open(node.port, setup.doc_id, token)
        await retry.wait_for(lambda m: isinstance(m, bytes))
        for sock in (present[1], elsewhere, retry):
            await sock.aclose()
