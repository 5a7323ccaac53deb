"""Comments notify: mentions (only people who may read the thread; the others are reported to the
writer), replies to the thread's participants (grouped per thread), resolution to participants;
never for one's own action; live in the inbox socket on another node."""

from __future__ import annotations

import asyncio
import json

import pytest
import tornado.websocket

from tests.comments_support import COMMENTS, THREADS, body, comment_world, mention
from tests.realtime_support import second_node

pytestmark = pytest.mark.timeout(90)
INBOX = "/api/v1/notifications/"
WAIT_S = 5.0


async def kinds_of(api, token: str) -> list[tuple[str, str | None, int]]:
    """(kind of the latest, thread id, count) per inbox item."""
    page = await api.get(INBOX, token=token)
    assert page.status == 200, page.body
    return [
        (item["latest"]["kind"], item["latest"]["thread_id"], item["count"])
        for item in page.body["items"]
    ]


async def test_mentions_replies_and_resolution_notify_the_right_people(api, ctx):
    w = await comment_world(api, ctx)
    created = await api.post(
        w.doc_threads(),
        {
            "body": body(
                "Ping ",
                mention(w.users["viewer"].id),
                mention(w.users["guest"].id),  # a member who may not read the document
                mention(w.users["editor"].id),  # the writer: never told about their own words
            )
        },
        token=w.token("editor"),
    )
    assert created.status == 201, created.body
    thread_id = created.body["id"]
    assert created.body["unnotified_mentions"] == [w.users["guest"].id]
    mentioned = await api.get(INBOX, token=w.token("viewer"))
    latest = mentioned.body["items"][0]["latest"]
    assert (latest["kind"], latest["thread_id"], latest["actor_id"]) == (
        "comment.mention",
        thread_id,
        w.users["editor"].id,
    )
    assert latest["document_id"] == w.doc_id and latest["data"]["title"] == "Spec"
    assert latest["data"]["excerpt"].startswith("Ping @Viewer")
    assert await kinds_of(api, w.token("guest")) == []
    assert await kinds_of(api, w.token("editor")) == []

    # Replies: the thread's participants hear of them, grouped into one item per thread.
    for text in ("one", "two", "three", "four"):
        sent = await api.post(
            f"{THREADS}{thread_id}/comments/", {"body": body(text)}, token=w.token("owner")
        )
        assert sent.status == 201
    assert await kinds_of(api, w.token("editor")) == [("thread.reply", thread_id, 4)]
    assert await kinds_of(api, w.token("owner")) == []  # only others' replies
    # The viewer was mentioned, not a participant: still the one item of the mention.
    assert await kinds_of(api, w.token("viewer")) == [("comment.mention", thread_id, 1)]

    # An edit tells only whom it newly mentions.
    top = created.body["comments"][0]["id"]
    edited = await api.patch(
        f"{COMMENTS}{top}/",
        {"body": body("Ping ", mention(w.users["viewer"].id), mention(w.users["commenter"].id))},
        token=w.token("editor"),
    )
    assert edited.status == 200, edited.body
    assert await kinds_of(api, w.token("commenter")) == [("comment.mention", thread_id, 1)]
    assert await kinds_of(api, w.token("viewer")) == [("comment.mention", thread_id, 1)]

    # Resolving tells the participants but the resolver; again (no change) tells nobody.
    for _ in range(2):
        resolved = await api.post(f"{THREADS}{thread_id}/resolve/", token=w.token("owner"))
        assert resolved.status == 200
    assert await kinds_of(api, w.token("editor")) == [("thread.resolved", thread_id, 5)]
    assert await kinds_of(api, w.token("owner")) == []


async def test_card_mentions_follow_board_access(api, ctx):
    w = await comment_world(api, ctx)
    created = await api.post(
        w.card_threads(),
        {"body": body(mention(w.users["viewer"].id), mention(w.users["guest"].id))},
        token=w.token("commenter"),
    )
    assert created.status == 201, created.body
    assert created.body["unnotified_mentions"] == [w.users["guest"].id]
    inbox = await api.get(INBOX, token=w.token("viewer"))
    latest = inbox.body["items"][0]["latest"]
    assert (latest["kind"], latest["card_id"], latest["board_id"], latest["data"]["title"]) == (
        "comment.mention",
        w.card_id,
        w.board_id,
        "Card",
    )


async def test_a_mention_reaches_the_inbox_socket_on_another_node(api, ctx, settings):
    w = await comment_world(api, ctx)
    async with second_node(settings) as node2:
        url = f"ws://127.0.0.1:{node2.port}/ws/inbox/?token={w.token('viewer')}"
        conn = await tornado.websocket.websocket_connect(url)
        try:
            ready = json.loads(await asyncio.wait_for(conn.read_message(), WAIT_S))
            assert ready["type"] == "ready"
            created = await api.post(
                w.doc_threads(),
                {"body": body("see ", mention(w.users["viewer"].id))},
                token=w.token("editor"),
            )
            assert created.status == 201
            while True:
                frame = json.loads(await asyncio.wait_for(conn.read_message(), WAIT_S))
                if frame["type"] == "event":
                    break
            event = frame["event"]
            assert event["type"] == "notification.created"
            assert event["notification"]["kind"] == "comment.mention"
            assert event["notification"]["thread_id"] == created.body["id"]
        finally:
            conn.close()
