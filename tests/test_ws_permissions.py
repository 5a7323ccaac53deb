"""Who may connect and what they may do, at the handshake and live: 44xx close codes, token
sources, Origin (S15), read-only roles (S13), role changes and revocations on every node within a
second (S11), token expiry during a session (S9)."""

from __future__ import annotations

import asyncio
import dataclasses
import time
import uuid

import pycrdt
import pytest
import tornado.httpclient
import tornado.websocket

from live.protocol import encode_sync_step2, encode_update
from models.repo import users as users_repo
from services import permissions_cache, tokens
from tests.realtime_support import (
    RawSocket,
    document_with,
    second_node,
    set_grant,
    text_update,
    ws_base,
)
from tests.yjs_client import YjsNodeClients

pytestmark = pytest.mark.timeout(60)

REVOCATION_DEADLINE_S = 1.0


async def closed_with(port: int, doc_id: str, token: str | None, **kw) -> int | None:  # type: ignore[no-untyped-def]
    sock = await RawSocket.open(port, doc_id, token, **kw)
    return await sock.wait_closed()


async def test_handshake_rejections_close_with_a_44xx_code(ctx, ws_port) -> None:
    """Split like the REST policy: outsiders of the workspace 4404 (existence not revealed),
    members who may not view 4403."""
    setup = await document_with(ctx, "editor", "outsider", "guest", "member")
    editor = setup.users["editor"].access_token
    assert await closed_with(ws_port, setup.doc_id, None) == 4401
    assert await closed_with(ws_port, setup.doc_id, "not-a-jwt") == 4401
    assert await closed_with(ws_port, setup.doc_id, editor[:-3] + "abc") == 4401
    assert await closed_with(ws_port, setup.doc_id, setup.users["outsider"].access_token) == 4404
    assert await closed_with(ws_port, setup.doc_id, setup.users["guest"].access_token) == 4403
    assert await closed_with(ws_port, str(uuid.uuid4()), editor) == 4404
    assert await closed_with(ws_port, "not-a-uuid", editor) == 4404
    assert await closed_with(ws_port, setup.doc_id, editor, query="format=xml") == 4400
    assert await closed_with(ws_port, setup.doc_id, editor, query="format=json&since=-1") == 4400
    refresh = tokens.issue(ctx.settings, "refresh", setup.users["editor"].id, str(uuid.uuid4()))
    assert await closed_with(ws_port, setup.doc_id, refresh.token) == 4401
    # A private document: a member without a grant may not view it (nothing cached for them yet).
    await ctx.db.execute("UPDATE documents SET is_private = true WHERE id = $1", setup.doc_id)
    assert await closed_with(ws_port, setup.doc_id, setup.users["member"].access_token) == 4403


async def test_token_from_header_or_subprotocol(ctx, ws_port) -> None:
    setup = await document_with(ctx, "editor")
    token = setup.users["editor"].access_token
    by_header = await RawSocket.open(
        ws_port, setup.doc_id, headers={"Authorization": f"Bearer {token}"}
    )
    await by_header.wait_for(lambda m: isinstance(m, bytes))  # SyncStep1 from the server
    await by_header.aclose()

    by_protocol = await RawSocket.open(ws_port, setup.doc_id, subprotocols=["collab", token])
    assert by_protocol.conn.selected_subprotocol == "collab"
    await by_protocol.wait_for(lambda m: isinstance(m, bytes))
    await by_protocol.aclose()

    async with YjsNodeClients() as clients:  # the stock provider's `protocols` option
        await clients.connect(
            "p", ws_base(ws_port), setup.doc_id, None, protocols=["collab", token]
        )
        await clients.wait_synced("p")


async def test_cross_origin_browser_handshake_is_refused(ctx, ws_port) -> None:
    """S15: a forged Origin gets HTTP 403 at the handshake; no Origin (non-browser) is fine."""
    setup = await document_with(ctx, "editor")
    token = setup.users["editor"].access_token
    with pytest.raises(tornado.httpclient.HTTPClientError) as refused:
        await RawSocket.open(
            ws_port, setup.doc_id, token, headers={"Origin": "https://evil.example"}
        )
    assert refused.value.code == 403
    same_host = await RawSocket.open(
        ws_port, setup.doc_id, token, headers={"Origin": f"http://127.0.0.1:{ws_port}"}
    )
    await same_host.wait_for(lambda m: isinstance(m, bytes))
    await same_host.aclose()


async def test_allowlisted_origin_is_accepted(ctx, settings, ws_port) -> None:
    allowed = dataclasses.replace(settings, ws_allowed_origins=("https://app.example",))
    setup = await document_with(ctx, "editor")
    async with second_node(allowed) as node2:
        sock = await RawSocket.open(
            node2.port,
            setup.doc_id,
            setup.users["editor"].access_token,
            headers={"Origin": "https://app.example"},
        )
        await sock.wait_for(lambda m: isinstance(m, bytes))
        await sock.aclose()


async def test_viewer_and_commenter_updates_are_rejected_connection_kept(ctx, ws_port) -> None:
    """S13: an Update and a SyncStep2 with new content are refused with permission-denied; the
    stream does not move; the viewer keeps receiving the editors' updates."""
    setup = await document_with(ctx, "editor", "viewer", "commenter")
    url = ws_base(ws_port)
    doc_log = ctx.doc_log
    async with YjsNodeClients() as clients:
        await clients.connect("editor", url, setup.doc_id, setup.users["editor"].access_token)
        await clients.wait_synced("editor")
        await clients.insert_text("editor", 0, "hello world")
        await clients.delete_text("editor", 0, 6)  # gives every SyncStep2 a delete set
        await clients.wait_json("editor", {"text": "world"}, roots={"text": "text"})
        for role in ("viewer", "commenter"):
            await clients.connect(role, url, setup.doc_id, setup.users[role].access_token)
            await clients.wait_synced(role)
            await clients.wait_json(role, {"text": "world"}, roots={"text": "text"})
        assert await clients.permission_denied("viewer") == []  # its SyncStep2 was not an edit
        before = await doc_log.last_seq(setup.doc_id)

        mark = len(clients.events)
        await clients.insert_text("viewer", 0, "viewer was here ")
        assert (await denied(clients, "viewer", mark)).startswith("forbidden: read-only")
        await clients.map_set("commenter", "k", "v")
        await denied(clients, "commenter", mark)

        await clients.disconnect("viewer")
        await clients.insert_text("viewer", 0, "offline ")
        mark = len(clients.events)
        await clients.reconnect("viewer")  # SyncStep2 carries the offline edit
        await denied(clients, "viewer", mark)

        await clients.insert_text("editor", 5, "!")
        await clients.wait_json("commenter", {"text": "world!"}, roots={"text": "text"})
        viewer_text = (await clients.state("viewer"))["json"]["text"]
        assert viewer_text.endswith("world!")  # still receives updates, connection kept
        assert await doc_log.last_seq(setup.doc_id) == before + 1
        assert (await clients.sync_status("viewer"))["wsconnected"]

    raw = await RawSocket.open(ws_port, setup.doc_id, setup.users["viewer"].access_token)
    update = text_update(pycrdt.Doc(), "raw")
    await raw.send(encode_update(update))
    await raw.send(encode_sync_step2(update))
    refusal = await raw.wait_for(lambda m: isinstance(m, bytes) and m[:1] == b"\x02")
    assert b"read-only" in refusal
    json_viewer = await RawSocket.json(ws_port, setup.doc_id, setup.users["viewer"].access_token)
    await json_viewer.wait_type("sync")
    await json_viewer.operation("v1", update)
    error = await json_viewer.ack("v1")
    assert error["type"] == "error" and error["code"] == "forbidden"
    assert await doc_log.last_seq(setup.doc_id) == before + 1
    await raw.aclose()
    await json_viewer.aclose()


async def test_editor_downgraded_to_viewer_becomes_read_only_in_place(ctx, ws_port) -> None:
    setup = await document_with(ctx, "member")
    member = setup.users["member"]
    await set_grant(ctx, setup.doc_id, member.id, "editor")
    sock = await RawSocket.json(ws_port, setup.doc_id, member.access_token)
    await sock.wait_type("sync")
    source = pycrdt.Doc()
    await sock.operation("before", text_update(source, "a"))
    assert (await sock.ack("before"))["type"] == "ack"
    async with YjsNodeClients() as clients:
        await clients.connect("yjs", ws_base(ws_port), setup.doc_id, member.access_token)
        await clients.wait_synced("yjs")

        await set_grant(ctx, setup.doc_id, member.id, "viewer")
        started = time.monotonic()
        await permissions_cache.invalidate_user(
            ctx, member.id, setup.workspace_id, resource_type="document", resource_id=setup.doc_id
        )
        told = await sock.wait_type("permission", timeout_s=REVOCATION_DEADLINE_S + 1)
        assert time.monotonic() - started < REVOCATION_DEADLINE_S
        assert told["role"] == "viewer" and told["read_only"] is True

        await sock.operation("after", text_update(source, "b"))
        assert (await sock.ack("after"))["code"] == "forbidden"
        mark = len(clients.events)
        await clients.insert_text("yjs", 0, "nope")
        assert "read-only" in await denied(clients, "yjs", mark)
        assert (await clients.sync_status("yjs"))["wsconnected"]

        await set_grant(ctx, setup.doc_id, member.id, "editor")  # and back
        await permissions_cache.invalidate_user(ctx, member.id, setup.workspace_id)
        upgraded = await sock.wait_json(lambda m: m["type"] == "permission" and not m["read_only"])
        assert upgraded["role"] == "editor"
        await sock.operation("again", text_update(source, "c"))
        assert (await sock.ack("again"))["type"] == "ack"
    await sock.aclose()


async def test_revoked_user_is_disconnected_on_every_node(ctx, settings, ws_port, api) -> None:
    """S11: removing access (members API: member -> guest without a grant) closes the user's
    sockets with 4403 on both nodes within a second."""
    setup = await document_with(ctx, "member")
    member = setup.users["member"]
    async with second_node(settings) as node2, YjsNodeClients() as clients:
        await clients.connect("n1", ws_base(ws_port), setup.doc_id, member.access_token)
        await clients.connect("n2", ws_base(node2.port), setup.doc_id, member.access_token)
        json_sock = await RawSocket.json(node2.port, setup.doc_id, member.access_token)
        await asyncio.gather(
            clients.wait_synced("n1"), clients.wait_synced("n2"), json_sock.wait_type("sync")
        )
        started = time.monotonic()
        changed = await api.patch(
            f"/api/v1/workspaces/{setup.workspace_id}/members/{member.id}/",
            {"role": "guest"},
            token=setup.users["owner"].access_token,
        )
        assert changed.status == 200, changed.body
        closes = await asyncio.gather(
            clients.wait_close("n1", timeout_s=3),
            clients.wait_close("n2", timeout_s=3),
            json_sock.wait_closed(3),
        )
        assert time.monotonic() - started < REVOCATION_DEADLINE_S + 0.5  # + API round trip
        assert [c[0]["code"] for c in closes[:2]] == [4403, 4403] and closes[2] == 4403
        assert not (await clients.sync_status("n1"))["should_connect"]  # 44xx: it gives up


async def test_logout_closes_the_session_sockets_with_4401(ctx, settings, ws_port, api) -> None:
    setup = await document_with(ctx, "editor")
    editor = setup.users["editor"]
    async with second_node(settings) as node2:
        here = await RawSocket.json(ws_port, setup.doc_id, editor.access_token)
        there = await RawSocket.json(node2.port, setup.doc_id, editor.access_token)
        await here.wait_type("sync")
        await there.wait_type("sync")
        assert (await api.post("/api/v1/auth/logout/", {}, token=editor.access_token)).status == 204
        assert await here.wait_closed(2) == 4401
        assert await there.wait_closed(2) == 4401


async def test_socket_closes_when_its_token_expires(ctx, settings, ws_port) -> None:
    """S9: a 2 s token; the socket is closed with 4401 at expiry."""
    setup = await document_with(ctx, "editor")
    short = dataclasses.replace(settings, access_token_ttl_s=2)
    family = await users_repo.create_family(ctx.db, setup.users["editor"].id)
    token = tokens.issue(short, "access", setup.users["editor"].id, family)
    sock = await RawSocket.json(ws_port, setup.doc_id, token.token)
    await sock.wait_type("sync")
    started = time.time()
    assert await sock.wait_closed(5) == 4401
    assert time.time() - started <= 3.5
    assert "expired" in (sock.close_reason or "")


async def denied(clients: YjsNodeClients, name: str, since: int = 0) -> str:
    """The next permission-denied reason `name` receives (an event of the harness)."""
    event = await clients.wait_event(
        lambda e: e["event"] == "permission_denied" and e["name"] == name, 5.0, since=since
    )
    return str(event["reason"])


@pytest.mark.parametrize("source", ["query", "header", "subprotocol"])
async def test_bad_tokens_close_4401_whichever_way_they_come(ctx, ws_port, source) -> None:
    """S8 on the socket: expired, tampered, refresh-as-access, garbage — one code, one reason."""
    setup = await document_with(ctx, "editor")
    user_id = setup.users["editor"].id
    family = await users_repo.create_family(ctx.db, user_id)
    expired = tokens.issue(
        dataclasses.replace(ctx.settings, access_token_ttl_s=-60), "access", user_id, family
    )
    good = setup.users["editor"].access_token
    bad = [
        expired.token,
        good[:-4] + ("AAAA" if not good.endswith("AAAA") else "BBBB"),
        tokens.issue(ctx.settings, "refresh", user_id, family).token,
        "a.b.c",
    ]
    reasons = set()
    for token in bad:
        if source == "query":
            sock = await RawSocket.open(ws_port, setup.doc_id, token)
        elif source == "header":
            sock = await RawSocket.open(
                ws_port, setup.doc_id, headers={"Authorization": f"Bearer {token}"}
            )
        else:
            sock = await RawSocket.open(ws_port, setup.doc_id, subprotocols=["collab", token])
        assert await sock.wait_closed() == 4401, token
        reasons.add(sock.close_reason)
    assert len(reasons) == 1  # nothing tells which check failed
