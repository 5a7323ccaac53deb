"""A room's update is acknowledged by its own message coming back through the room's ordered
consumer (no PubAck: one NATS message per update less, issue 15) -- and only by that: a duplicate
or a refusal never comes back, and the PubAck request that follows the echo timeout says which."""

from __future__ import annotations

import time
from collections.abc import Callable
from types import SimpleNamespace

import pycrdt
import pytest

import live.log_follower
import live.room
from tests.realtime_support import document_with, text_of, text_update


def peer(user_id: str) -> SimpleNamespace:
    return SimpleNamespace(conn_id="test-conn", user_id=user_id)


def record(stored: list[tuple[str, int]]) -> Callable[[str, int], None]:
    """A `DocLog.on_published` listener that keeps what it is told."""
    return lambda doc_id, seq: stored.append((doc_id, seq))


async def test_an_update_is_acknowledged_by_its_echo_without_a_puback(ctx, monkeypatch):
    setup = await document_with(ctx, "editor")
    room = await ctx.rooms.acquire(setup.doc_id)
    walked: list[bytes] = []
    real_walk = live.log_follower.validate_update_structure

    def counting_walk(update: bytes) -> None:
        walked.append(update)
        real_walk(update)

    async def no_puback(*args, **kwargs):  # type: ignore[no-untyped-def]
        raise AssertionError("a PubAck was requested for an update that came back")

    monkeypatch.setattr(live.log_follower, "validate_update_structure", counting_walk)
    monkeypatch.setattr(room._log, "vouched", lambda doc_id, entry: False)
    monkeypatch.setattr(room._log, "publish", no_puback)
    stored: list[tuple[str, int]] = []  # what the projection refresher and mention scan are told
    monkeypatch.setattr(room._log, "_listeners", [*room._log._listeners, record(stored)])
    update = text_update(pycrdt.Doc(), "hello")
    ack = await room.publish(peer(setup.users["editor"].id), update, "m-echo", confirm_by_echo=True)
    assert not ack.duplicate
    assert ack.seq == await ctx.doc_log.last_seq(setup.doc_id)
    # Acknowledged means stored *and* applied here; the bytes it validated were not walked again.
    assert room.last_applied_seq >= ack.seq
    assert text_of(room.full_state()) == "hello"
    assert walked == []
    assert stored == [(setup.doc_id, ack.seq)]
    assert not room.follower._echoes


async def test_a_resent_update_is_a_duplicate_told_by_the_puback_after_the_echo_timeout(
    ctx, monkeypatch
):
    monkeypatch.setattr(live.room, "ECHO_TIMEOUT_S", 0.3)
    setup = await document_with(ctx, "editor")
    room = await ctx.rooms.acquire(setup.doc_id)
    editor = peer(setup.users["editor"].id)
    update = text_update(pycrdt.Doc(), "once")
    stored: list[tuple[str, int]] = []
    monkeypatch.setattr(room._log, "_listeners", [*room._log._listeners, record(stored)])
    first = await room.publish(editor, update, "m-again", confirm_by_echo=True)
    started = time.monotonic()
    again = await room.publish(editor, update, "m-again", confirm_by_echo=True)
    assert stored == [(setup.doc_id, first.seq)]  # once: a duplicate stores nothing
    assert time.monotonic() - started >= 0.3  # JetStream dropped it: nothing came back
    assert again.duplicate and again.seq == first.seq
    assert await ctx.doc_log.last_seq(setup.doc_id) == first.seq
    assert text_of(room.full_state()) == "once"
    assert not room.follower._echoes


async def test_an_update_the_connection_refuses_is_published_with_a_puback(ctx, monkeypatch):
    """`DocLog.send` refused (here: told the connection is closed) -> the PubAck path, at once."""
    setup = await document_with(ctx, "editor")
    room = await ctx.rooms.acquire(setup.doc_id)

    async def refused(*args, **kwargs):  # type: ignore[no-untyped-def]
        return False

    monkeypatch.setattr(room._log, "send", refused)
    update = text_update(pycrdt.Doc(), "via puback")
    ack = await room.publish(
        peer(setup.users["editor"].id), update, "m-refused", confirm_by_echo=True
    )
    assert not ack.duplicate and ack.seq == await ctx.doc_log.last_seq(setup.doc_id)
    assert await room.wait_applied(ack.seq, 5)
    assert text_of(room.full_state()) == "via puback"
    assert not room.follower._echoes


@pytest.mark.parametrize("text", ["a\x00b", "\u00e9\u4e2d"])
async def test_the_echo_carries_the_exact_bytes(ctx, text):
    setup = await document_with(ctx, "editor")
    room = await ctx.rooms.acquire(setup.doc_id)
    update = text_update(pycrdt.Doc(), text)
    ack = await room.publish(
        peer(setup.users["editor"].id), update, f"m-{len(text)}", confirm_by_echo=True
    )
    (entry,) = await ctx.doc_log.read(setup.doc_id, 0)
    assert entry.seq == ack.seq and entry.update == update and entry.msg_id == f"m-{len(text)}"
    assert entry.node == ctx.node_id and entry.signature is not None
