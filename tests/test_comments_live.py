"""Comment events live: document threads reach every document socket on every node as JSON
envelope frames (`collab.doc.<id>.event`), resumable with `?events_since=`; card threads reach
board sockets as board events."""

from __future__ import annotations

import pytest

from tests.board_helpers import BoardSocket
from tests.comments_support import COMMENTS, THREADS, body, comment_world, start_thread
from tests.realtime_support import RawSocket, second_node

pytestmark = pytest.mark.timeout(90)


def events_of(sock: RawSocket) -> list[tuple[int, str]]:
    return [(m["seq"], m["event"]["type"]) for m in sock.json_messages() if m["type"] == "event"]


async def wait_event(sock: RawSocket, event_type: str, start: int = 0) -> dict:
    return await sock.wait_json(
        lambda m: m.get("type") == "event" and m["event"]["type"] == event_type, start=start
    )


async def test_document_comment_events_reach_every_node_and_resume(api, ctx, settings, ws_port):
    w = await comment_world(api, ctx)
    async with second_node(settings) as node2:
        here = await RawSocket.json(ws_port, w.doc_id, w.token("viewer"))
        there = await RawSocket.json(node2.port, w.doc_id, w.token("commenter"))
        binary = await RawSocket.open(node2.port, w.doc_id, w.token("editor"), query="events=true")
        for sock in (here, there, binary):
            await sock.wait_type("events")

        thread = await start_thread(api, w.doc_threads(), w.token("editor"), "Look here")
        for sock in (here, there, binary):
            created = await wait_event(sock, "thread.created")
            event = created["event"]
            assert (event["document_id"], event["thread_id"], event["actor_id"]) == (
                w.doc_id,
                thread["id"],
                w.users["editor"].id,
            )
            assert event["entity"]["comments"][0]["text"] == "Look here"
        first_seq = (await wait_event(there, "thread.created"))["seq"]

        top = thread["comments"][0]["id"]
        steps = [
            (
                "comment.created",
                api.post(
                    f"{THREADS}{thread['id']}/comments/",
                    {"body": body("ok")},
                    token=w.token("owner"),
                ),
            ),
            (
                "comment.updated",
                api.patch(f"{COMMENTS}{top}/", {"body": body("Look!")}, token=w.token("editor")),
            ),
            (
                "comment.reactions_changed",
                api.put(f"{COMMENTS}{top}/reactions/eyes/", token=w.token("owner")),
            ),
            (
                "thread.resolved",
                api.post(f"{THREADS}{thread['id']}/resolve/", token=w.token("owner")),
            ),
            (
                "thread.reopened",
                api.post(f"{THREADS}{thread['id']}/reopen/", token=w.token("owner")),
            ),
            ("comment.deleted", api.delete(f"{COMMENTS}{top}/", token=w.token("editor"))),
        ]
        for event_type, request in steps:
            assert (await request).status in (200, 201), event_type
            for sock in (here, there):
                await wait_event(sock, event_type)
        # Same events, same order, same stream sequences on both nodes; each once.
        assert events_of(here) == events_of(there)
        assert [t for _, t in events_of(here)] == ["thread.created", *[t for t, _ in steps]]
        # A resolve of a resolved thread changes nothing and says nothing.
        await api.post(f"{THREADS}{thread['id']}/resolve/", token=w.token("owner"))

        # Resume on the other node from the first event: everything after it, once, in order.
        resumed = await RawSocket.json(
            node2.port, w.doc_id, w.token("viewer"), query=f"events_since={first_seq}"
        )
        position = await resumed.wait_type("events")
        assert position == {"type": "events", "seq": first_seq}
        await wait_event(resumed, "thread.resolved")
        await wait_event(resumed, "comment.deleted")
        assert events_of(resumed) == events_of(here)[1:]
        last = await api.post(
            f"{THREADS}{thread['id']}/comments/", {"body": body("more")}, token=w.token("owner")
        )
        assert last.status == 201
        live = await wait_event(resumed, "comment.created", start=len(resumed.messages) - 1)
        assert live["event"]["entity"]["id"] == last.body["id"]

        # A resume point the stream never reached: told to refetch, then live.
        ahead = await RawSocket.json(
            ws_port, w.doc_id, w.token("viewer"), query="events_since=999999999"
        )
        told = await ahead.wait_type("events")
        assert told["refetch"] == "ahead_of_stream"
        for sock in (here, there, binary, resumed, ahead):
            await sock.aclose()


async def test_bad_event_queries_close_4400(api, ctx, ws_port):
    w = await comment_world(api, ctx)
    for query in (
        "events_since=-1",
        "events_since=x",
        "events=maybe",
        f"events_since={2**63}",  # past any stream sequence (the inbox socket's rule too)
        f"since={2**63}",
    ):
        sock = await RawSocket.json(ws_port, w.doc_id, w.token("viewer"), query=query)
        assert await sock.wait_closed() == 4400, query


async def test_card_comment_events_are_board_events(api, ctx, settings, ws_port):
    w = await comment_world(api, ctx)
    async with second_node(settings) as node2:
        board = await BoardSocket.connect(node2.port, w.board_id, w.token("viewer"))
        await board.ready()
        thread = await start_thread(api, w.card_threads(), w.token("commenter"), "on a card")
        event = await board.event("thread.created")
        assert (event["board_id"], event["entity"]["id"], event["entity"]["card_id"]) == (
            w.board_id,
            thread["id"],
            w.card_id,
        )
        reply = await api.post(
            f"{THREADS}{thread['id']}/comments/", {"body": body("yes")}, token=w.token("owner")
        )
        assert reply.status == 201
        replied = await board.event("comment.created")
        assert replied["entity"]["id"] == reply.body["id"] and replied["seq"] == event["seq"] + 1
        board.close()
