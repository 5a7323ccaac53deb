"""Room lifecycle edge: with a zero unload grace, a room must not unload under its own joiner."""

from __future__ import annotations

import dataclasses

import pycrdt

from tests.realtime_support import RawSocket, document_with, second_node, text_update


async def test_zero_unload_grace_does_not_unload_a_room_under_its_joiner(ctx, settings) -> None:
    eager = dataclasses.replace(settings, room_unload_grace_s=0.0)
    setup = await document_with(ctx, "editor", "viewer")
    async with second_node(eager) as node:
        watcher = await RawSocket.json(node.port, setup.doc_id, setup.users["viewer"].access_token)
        await watcher.wait_type("sync")
        writer = await RawSocket.json(node.port, setup.doc_id, setup.users["editor"].access_token)
        await writer.wait_type("sync")
        await writer.operation("w1", text_update(pycrdt.Doc(), "hello"))
        ack = await writer.ack("w1")
        broadcast = await watcher.wait_type("operation")
        assert broadcast["version"] == ack["version"]
        assert setup.doc_id in node.ctx.rooms.rooms
        await writer.aclose()
        await watcher.aclose()
