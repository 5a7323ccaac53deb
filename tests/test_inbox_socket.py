"""`/ws/inbox`: the user's notification events live on every node, `since` resume from the
stream sequence, handshake refusals, bad frames, session end — real nodes, NATS and Postgres."""

from __future__ import annotations

import uuid
from uuid import UUID

import pytest

from bus.schemas.notifications import NotificationEventSchema
from handlers.schemas.notifications import INBOX_FRAMES
from services import notifications
from tests.board_helpers import second_node
from tests.notification_support import (
    INBOX,
    InboxSocket,
    draft,
    notify,
    two_open_transactions,
    workspace_with_empty_inboxes,
)
from tests.ws_helpers import insert_document

_schema = NotificationEventSchema()
_frames = {
    name.removeprefix("Inbox").removesuffix("Frame").lower(): schema()
    for name, schema in INBOX_FRAMES.items()
}


def valid_frames(sock: InboxSocket) -> bool:
    """Every frame the socket got matches its documented schema (OpenAPI `x-websocket.frames`)."""
    kinds = {"pong": "ping", "error": "socketerror"}
    return all(_frames[kinds.get(f["type"], f["type"])].validate(f) == {} for f in sock.frames)


@pytest.mark.parametrize(
    ("token", "query", "code"),
    [
        (None, "", 4401),
        ("not.a.jwt", "", 4401),
        ("good", "since=-1", 4400),
        ("good", "since=x", 4400),
    ],
)
async def test_handshake_refusals(api, ctx, http_server_port, token, query, code):
    _, users = await workspace_with_empty_inboxes(api, ctx)
    token = users["owner"].access_token if token == "good" else token
    sock = await InboxSocket.open(http_server_port[1], token, query=query)
    assert (await sock.closed())[0] == code


async def test_events_reach_the_inbox_on_another_node(api, ctx, settings):
    """Written and read on node 1, pushed by node 2: the notification, then the count dropping."""
    workspace, users = await workspace_with_empty_inboxes(api, ctx, "member")
    owner, member = users["owner"], users["member"]
    doc = await insert_document(ctx, workspace["id"], title="Plan")
    async with second_node(settings) as (node, _):
        sock = await InboxSocket.open(node.port, None, subprotocols=["collab", member.access_token])
        ready = await sock.ready()
        assert ready["unread_count"] == 0
        made = await notify(
            ctx,
            draft(member, owner, workspace["id"], document_id=UUID(doc), data={"title": "Plan"}),
        )
        created = await sock.frame("notification.created")
        assert created["seq"] > ready["seq"]
        event = created["event"]
        assert _schema.validate(event) == {}
        assert (event["notification"]["id"], event["unread_count"]) == (str(made), 1)
        read = await api.post(f"{INBOX}{made}/read/", token=member.access_token)  # node 1
        assert read.status == 200
        dropped = await sock.frame("notification.read")
        assert (dropped["event"]["notification_id"], dropped["event"]["unread_count"]) == (
            str(made),
            0,
        )
        assert dropped["seq"] > created["seq"]
        assert valid_frames(sock)
        sock.close()


async def test_since_replays_what_was_missed_once_then_goes_live(
    api, ctx, settings, http_server_port
):
    workspace, users = await workspace_with_empty_inboxes(api, ctx, "member", "admin")
    owner, member, admin = users["owner"], users["member"], users["admin"]
    first = await InboxSocket.open(http_server_port[1], member.access_token)
    seen = (await first.ready())["seq"]
    first.close()
    thread = uuid.uuid4()
    missed = [
        await notify(
            ctx,
            draft(
                member, owner, workspace["id"], kind=notifications.THREAD_REPLY, thread_id=thread
            ),
        )
        for _ in range(3)
    ]
    await notify(ctx, draft(admin, owner, workspace["id"]))  # someone else's: never shown
    async with second_node(settings) as (node, _):
        resumed = await InboxSocket.open(node.port, member.access_token, since=seen)
        ready = await resumed.ready()
        assert ready["unread_count"] == 3
        replay = [await resumed.frame("notification.created") for _ in missed]
        assert [f["event"]["notification"]["id"] for f in replay] == [str(m) for m in missed]
        assert [f["event"]["unread_count"] for f in replay] == [1, 2, 3]
        seqs = [f["seq"] for f in replay]
        assert seqs == sorted(seqs) and seqs[0] > seen
        live = await notify(ctx, draft(member, admin, workspace["id"], kind="access.granted"))
        frame = await resumed.frame("notification.created")
        assert frame["event"]["notification"]["id"] == str(live)
        events = [f for f in resumed.frames if f["type"] == "event"]
        assert len(events) == 4  # nothing twice, nothing of the admin's
        assert {f["event"]["user_id"] for f in events} == {member.id}
        resumed.close()


async def test_since_past_the_stream_gets_refetch_then_live(api, ctx, http_server_port):
    workspace, users = await workspace_with_empty_inboxes(api, ctx, "member")
    owner, member = users["owner"], users["member"]
    sock = await InboxSocket.open(http_server_port[1], member.access_token, since=2**62)
    refetch = await sock.next()
    assert (refetch["type"], refetch["reason"]) == ("refetch", "ahead_of_stream")
    ready = await sock.ready()
    assert ready["seq"] == refetch["seq"]
    made = await notify(ctx, draft(member, owner, workspace["id"]))
    assert (await sock.frame("notification.created"))["event"]["notification"]["id"] == str(made)
    assert valid_frames(sock)
    sock.close()


async def test_the_socket_corrects_counts_of_changes_committed_together(api, ctx, http_server_port):
    """Two notifications written at the same moment each count without the other (1 and 1);
    the socket re-reads and sends the true total."""
    workspace, users = await workspace_with_empty_inboxes(api, ctx, "member")
    owner, member = users["owner"], users["member"]
    sock = await InboxSocket.open(http_server_port[1], member.access_token)
    await sock.ready()

    def step(uow):
        return notifications.notify(uow, draft(member, owner, workspace["id"]))

    await two_open_transactions(ctx, [step], [step])
    events = [await sock.frame("notification.created") for _ in range(2)]
    assert [f["event"]["unread_count"] for f in events] == [1, 1]
    unread = await sock.next(lambda f: f["type"] == "unread")
    assert unread["unread_count"] == 2
    assert valid_frames(sock)
    sock.close()


@pytest.mark.parametrize(
    ("frame", "code"),
    [
        ("not json", "bad_json"),
        ("[1, 2]", "bad_frame"),
        ('{"type": "shout"}', "unknown_type"),
        ('{"type": "ping", "extra": 1}', "unknown_type"),
        (b"\x00\x01", "bad_frame"),
    ],
)
async def test_bad_frames_get_errors_and_keep_the_socket(api, ctx, http_server_port, frame, code):
    _, users = await workspace_with_empty_inboxes(api, ctx)
    sock = await InboxSocket.open(http_server_port[1], users["owner"].access_token)
    await sock.ready()
    await sock.conn.write_message(frame, binary=isinstance(frame, bytes))
    assert (await sock.next(lambda f: f["type"] == "error"))["code"] == code
    await sock.conn.write_message('{"type":"ping"}')
    assert (await sock.next(lambda f: f["type"] == "pong"))["type"] == "pong"
    assert valid_frames(sock)
    sock.close()


async def test_logout_closes_the_inbox_socket(api, ctx, http_server_port):
    _, users = await workspace_with_empty_inboxes(api, ctx)
    owner = users["owner"]
    sock = await InboxSocket.open(http_server_port[1], owner.access_token)
    await sock.ready()
    logout = await api.post("/api/v1/auth/logout/", token=owner.access_token)
    assert logout.status == 204
    assert (await sock.closed())[0] == 4401


def test_the_openapi_document_names_the_inbox_frames_and_the_subject_schema():
    from server.app import all_routes
    from server.openapi import build_spec

    spec = build_spec(all_routes())
    frames = spec["paths"]["/ws/inbox/"]["get"]["x-websocket"]["frames"]
    assert [f["$ref"].rsplit("/", 1)[1] for f in frames] == list(INBOX_FRAMES)
    event = spec["components"]["schemas"]["NotificationEvent"]
    assert set(event["required"]) == {"type", "id", "user_id", "at", "unread_count"}
