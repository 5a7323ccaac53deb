"""A node's NATS link breaks and comes back: its rooms resume following the log (edits made
elsewhere meanwhile arrive), and revocation signals it missed are made up for by re-checking every
socket (R2's "consumers resume" for the real-time side).

The second node talks to NATS through a loopback TCP proxy that the test cuts and restores; the
shared nats-server is never touched.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import uuid
from collections.abc import AsyncIterator
from urllib.parse import urlparse

import pycrdt
import pytest

from server.runner import start_node
from services import permissions_cache
from tests.realtime_support import RawSocket, document_with, set_grant, text_update, ws_base
from tests.yjs_client import YjsNodeClients

pytestmark = pytest.mark.timeout(90)


class CuttableProxy:
    """Forwards TCP to `target`; `cut()` drops every connection and refuses new ones."""

    def __init__(self, target_host: str, target_port: int) -> None:
        self.target = (target_host, target_port)
        self.open = True
        self._writers: set[asyncio.StreamWriter] = set()
        self.server: asyncio.Server | None = None

    async def start(self) -> int:
        self.server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        return int(self.server.sockets[0].getsockname()[1])

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if not self.open:
            writer.close()
            return
        up_reader, up_writer = await asyncio.open_connection(*self.target)
        self._writers |= {writer, up_writer}
        await asyncio.gather(
            self._pipe(reader, up_writer), self._pipe(up_reader, writer), return_exceptions=True
        )

    async def _pipe(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while data := await reader.read(65536):
                writer.write(data)
                await writer.drain()
        finally:
            writer.close()
            self._writers.discard(writer)

    def cut(self) -> None:
        self.open = False
        for writer in list(self._writers):
            writer.transport.abort()
        self._writers.clear()

    def restore(self) -> None:
        self.open = True

    async def stop(self) -> None:
        self.cut()
        if self.server is not None:
            self.server.close()
            await self.server.wait_closed()


@contextlib.asynccontextmanager
async def node_behind_proxy(settings) -> AsyncIterator[tuple[object, CuttableProxy]]:  # type: ignore[no-untyped-def]
    upstream = urlparse(settings.nats_url)
    proxy = CuttableProxy(upstream.hostname or "127.0.0.1", upstream.port or 4222)
    port = await proxy.start()
    node = await start_node(
        dataclasses.replace(
            settings,
            node_id=f"proxied-{uuid.uuid4().hex[:6]}",
            port=0,
            nats_url=f"nats://127.0.0.1:{port}",
        )
    )
    try:
        yield node, proxy
    finally:
        proxy.restore()
        await node.stop()
        await proxy.stop()


async def test_rooms_resume_and_missed_revocations_apply_after_a_nats_reconnect(
    ctx, settings, ws_port
) -> None:
    setup = await document_with(ctx, "editor", "member")
    editor, member = setup.users["editor"], setup.users["member"]
    await set_grant(ctx, setup.doc_id, member.id, "editor")
    async with node_behind_proxy(settings) as (node, proxy), YjsNodeClients() as clients:
        await clients.connect("here", ws_base(ws_port), setup.doc_id, editor.access_token)
        await clients.connect("there", ws_base(node.port), setup.doc_id, editor.access_token)
        revoked = await RawSocket.json(node.port, setup.doc_id, member.access_token)
        await asyncio.gather(
            clients.wait_synced("here"), clients.wait_synced("there"), revoked.wait_type("sync")
        )
        await clients.insert_text("here", 0, "before ")
        await clients.wait_json("there", {"text": "before "}, roots={"text": "text"})

        proxy.cut()
        # While the proxied node is cut off: an edit elsewhere, and a revocation it cannot hear.
        await clients.insert_text("here", 7, "during")
        await set_grant(ctx, setup.doc_id, member.id, None)
        await ctx.db.execute(
            "UPDATE workspace_members SET role = 'guest' WHERE workspace_id = $1 AND user_id = $2",
            setup.workspace_id,
            member.id,
        )
        await permissions_cache.invalidate_user(ctx, member.id, setup.workspace_id)
        assert not revoked.closed.is_set()
        proxy.restore()

        await clients.wait_json(
            "there", {"text": "before during"}, roots={"text": "text"}, timeout_s=15
        )
        assert await revoked.wait_closed(15) == 4403
        await clients.insert_text("there", 0, "after ")
        await clients.wait_json("here", {"text": "after before during"}, roots={"text": "text"})


async def test_jetstream_unreachable_means_an_error_never_an_ack(ctx, settings, ws_port) -> None:
    """While a node cannot reach JetStream, a JSON operation gets `service_unavailable` (never an
    ack) and a binary client's socket closes with 1013; after the link is back, the JSON client's
    retry with the same id is stored once and the binary client's update arrives through its own
    resync."""
    setup = await document_with(ctx, "editor")
    token = setup.users["editor"].access_token
    doc_log = ctx.doc_log
    async with node_behind_proxy(settings) as (node, proxy), YjsNodeClients() as clients:
        json_client = await RawSocket.json(node.port, setup.doc_id, token)
        await clients.connect("cut", ws_base(node.port), setup.doc_id, token)
        await clients.connect("peer", ws_base(ws_port), setup.doc_id, token)
        await asyncio.gather(
            json_client.wait_type("sync"), clients.wait_synced("cut"), clients.wait_synced("peer")
        )
        update = text_update(pycrdt.Doc(), "json ")

        proxy.cut()
        await json_client.operation("during", update)
        await clients.map_set("cut", "offline-ish", True)
        # Both wait out the publish deadline (doc_log.PUBLISH_DEADLINE_S) concurrently.
        refused, closes = await asyncio.gather(
            json_client.ack("during", timeout_s=15), clients.wait_close("cut", timeout_s=15)
        )
        assert refused["type"] == "error" and refused["code"] == "service_unavailable"
        assert closes[0]["code"] == 1013
        assert await doc_log.read(setup.doc_id, 0) == []
        proxy.restore()

        await clients.wait_json("peer", {"map": {"offline-ish": True}}, timeout_s=15)
        start = len(json_client.messages)
        await json_client.operation("during", update)
        accepted = await json_client.wait_json(
            lambda m: m.get("id") == "during", timeout_s=15, start=start
        )
        assert accepted["type"] == "ack"
        ids = [e.msg_id for e in await doc_log.read(setup.doc_id, 0)]
        assert ids.count(f"op:{setup.doc_id}:{setup.users['editor'].id}:during") == 1
        await json_client.aclose()
