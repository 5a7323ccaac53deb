"""The inbox REST API (`/api/v1/notifications/…`): grouped listing with cursor pages, unread
count, read / archive, preferences; bad input and other users' ids — real stack, real HTTP."""

from __future__ import annotations

import uuid
from uuid import UUID

import pytest

from bus.jetstream import user_notification_subject
from handlers.base import implemented_methods
from handlers.notifications import ROUTES
from services import notifications
from tests.notification_support import INBOX, draft, notify, workspace_with_empty_inboxes
from tests.ws_helpers import Collector, insert_document


async def inbox(api, user, **query) -> dict:
    path = INBOX + ("?" + "&".join(f"{k}={v}" for k, v in query.items()) if query else "")
    response = await api.get(path, token=user.access_token)
    assert response.status == 200, response.body
    return response.body


async def seeded(api, ctx):
    """A member with 4 replies in one thread and 1 mention in another document (5 unread)."""
    workspace, users = await workspace_with_empty_inboxes(api, ctx, "member", "admin")
    owner, member, admin = users["owner"], users["member"], users["admin"]
    doc, other_doc, thread = (
        await insert_document(ctx, workspace["id"]),
        await insert_document(ctx, workspace["id"]),
        uuid.uuid4(),
    )
    replies = []
    for actor in (owner, admin, owner, admin):
        replies.append(
            await notify(
                ctx,
                draft(
                    member,
                    actor,
                    workspace["id"],
                    kind=notifications.THREAD_REPLY,
                    document_id=UUID(doc),
                    thread_id=thread,
                    data={"excerpt": f"reply {len(replies)}"},
                ),
            )
        )
    mention = await notify(ctx, draft(member, owner, workspace["id"], document_id=UUID(other_doc)))
    return workspace, users, f"thread:{thread}", replies, mention


async def test_four_replies_are_one_item_with_a_count(api, ctx):
    _, users, thread_key, replies, mention = await seeded(api, ctx)
    owner, admin = users["owner"], users["admin"]
    page = await inbox(api, users["member"])
    assert page["unread_count"] == 5
    assert page["next_cursor"] is None
    mention_item, thread_item = page["items"]  # the mention is newest
    assert mention_item["latest"]["id"] == str(mention)
    assert (mention_item["count"], mention_item["unread_count"]) == (1, 1)
    assert thread_item["group_key"] == thread_key
    assert (thread_item["count"], thread_item["unread_count"]) == (4, 4)
    assert thread_item["latest"]["id"] == str(replies[-1])
    assert thread_item["latest"]["data"] == {"excerpt": "reply 3"}
    assert sorted(thread_item["actor_ids"]) == sorted([owner.id, admin.id])
    count = await api.get(INBOX + "unread-count/", token=users["member"].access_token)
    assert count.body == {"unread_count": 5}


async def test_cursor_pages_visit_every_group_once(api, ctx):
    workspace, users = await workspace_with_empty_inboxes(api, ctx, "member")
    owner, member = users["owner"], users["member"]
    for _ in range(5):
        doc = await insert_document(ctx, workspace["id"])
        await notify(ctx, draft(member, owner, workspace["id"], document_id=UUID(doc)))
    seen, cursor, pages = [], None, 0
    while True:
        page = await inbox(api, member, limit=2, **({"cursor": cursor} if cursor else {}))
        seen += [item["group_key"] for item in page["items"]]
        pages += 1
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert pages == 3
    assert len(seen) == len(set(seen)) == 5


async def test_mark_one_group_and_all_read_and_tell_the_users_subject(api, ctx):
    _, users, thread_key, replies, _ = await seeded(api, ctx)
    member = users["member"]
    token = member.access_token
    collector = await Collector().start(ctx, user_notification_subject(member.id))
    try:
        one = await api.post(f"{INBOX}{replies[0]}/read/", token=token)
        assert (one.status, one.body) == (200, {"unread_count": 4})
        event, _ = await collector.wait_for(lambda e: e["type"] == "notification.read")
        assert (event["notification_id"], event["unread_count"]) == (str(replies[0]), 4)
        again = await api.post(f"{INBOX}{replies[0]}/read/", token=token)
        assert again.body == {"unread_count": 4}  # already read: nothing changes
        group = await api.post(INBOX + "read/", {"group_key": thread_key}, token=token)
        assert group.body == {"unread_count": 1}
        unread = await inbox(api, member, view="unread")
        assert [item["group_key"] for item in unread["items"]] != [thread_key]
        assert len(unread["items"]) == 1
        everything = await api.post(INBOX + "read/", {"all": True}, token=token)
        assert everything.body == {"unread_count": 0}
        await collector.wait_for(
            lambda e: e["type"] == "notification.read" and e["unread_count"] == 0
        )
    finally:
        await collector.stop()
    reads = [e for e, _ in collector.messages if e["type"] == "notification.read"]
    assert len(reads) == 3  # the repeated mark-read emitted nothing
    assert (await inbox(api, member, view="unread"))["items"] == []


async def test_archive_moves_an_item_to_the_archive_and_back(api, ctx):
    _, users, thread_key, _, mention = await seeded(api, ctx)
    token = users["member"].access_token
    archived = await api.post(INBOX + "archive/", {"group_key": thread_key}, token=token)
    assert archived.body == {"unread_count": 1}  # archived rows leave the unread count
    items = (await inbox(api, users["member"]))["items"]
    assert [item["latest"]["id"] for item in items] == [str(mention)]
    archive = (await inbox(api, users["member"], view="archived"))["items"]
    assert [(item["group_key"], item["count"]) for item in archive] == [(thread_key, 4)]
    back = await api.post(INBOX + "unarchive/", {"group_key": thread_key}, token=token)
    assert back.body == {"unread_count": 5}
    one = await api.post(f"{INBOX}{mention}/archive/", token=token)
    assert one.body == {"unread_count": 4}
    assert (await inbox(api, users["member"], view="archived"))["items"][0]["count"] == 1


async def test_another_users_notifications_do_not_exist_for_me(api, ctx):
    _, users, thread_key, replies, _ = await seeded(api, ctx)
    intruder = users["admin"]
    for action in ("read", "archive", "unarchive"):
        response = await api.post(f"{INBOX}{replies[0]}/{action}/", token=intruder.access_token)
        assert (response.status, response.error_code) == (404, "not_found")
        group = await api.post(
            f"{INBOX}{action}/", {"group_key": thread_key}, token=intruder.access_token
        )
        assert group.status == 404
    assert (await inbox(api, intruder))["items"] == []
    assert (await inbox(api, users["member"]))["unread_count"] == 5  # nothing changed
    unsigned = await api.get(INBOX)
    assert unsigned.status == 401


@pytest.mark.parametrize(
    "query",
    [
        "view=later",
        "view=unread%00",
        "cursor=not-a-cursor",
        "cursor=W10",  # base64 of "[]"
        "cursor=WyJ5ZXN0ZXJkYXkiLCAieCJd",  # ["yesterday", "x"]
        "cursor=%00",
        "limit=0",
        "limit=101",
        "limit=ten",
        "colour=blue",
    ],
)
async def test_bad_listing_queries_are_400(api, ctx, query):
    _, users = await workspace_with_empty_inboxes(api, ctx)
    response = await api.get(f"{INBOX}?{query}", token=users["owner"].access_token)
    assert (response.status, response.error_code) == (400, "validation_error"), response.body


@pytest.mark.parametrize(
    "body",
    [
        {},
        {"all": False},
        {"all": True, "group_key": "thread:x"},
        {"group_key": ""},
        {"group_key": "thread:\u0000"},
        {"group_key": 7},
        {"all": True, "extra": 1},
        [],
    ],
)
async def test_bad_targets_are_400_and_change_nothing(api, ctx, body):
    _, users, *_ = await seeded(api, ctx)
    token = users["member"].access_token
    for action in ("read", "archive"):
        response = await api.post(INBOX + f"{action}/", body, token=token)
        assert (response.status, response.error_code) == (400, "validation_error"), response.body
    one = await api.post(f"{INBOX}{uuid.uuid4()}/read/", {"x": 1}, token=token)
    assert one.status == 400
    assert (await inbox(api, users["member"]))["unread_count"] == 5


async def test_preferences_list_every_kind_and_set_one(api, ctx):
    workspace, users = await workspace_with_empty_inboxes(api, ctx, "member")
    owner, member = users["owner"], users["member"]
    path = INBOX + "preferences/"
    listed = await api.get(path, token=member.access_token)
    by_kind = {p["kind"]: p for p in listed.body["preferences"]}
    assert list(by_kind) == list(notifications.NOTIFICATION_KINDS)
    assert by_kind["comment.mention"]["channel"] == "email_immediate"
    assert by_kind["thread.reply"] == {
        "kind": "thread.reply",
        "channel": "in_app",
        "default_channel": "in_app",
    }
    put = await api.put(path + "document.mention/", {"channel": "off"}, token=member.access_token)
    assert put.body == {
        "kind": "document.mention",
        "channel": "off",
        "default_channel": "email_immediate",
    }
    assert await notify(ctx, draft(member, owner, workspace["id"])) is None
    digest = await api.put(
        path + "document.mention/", {"channel": "email_digest_daily"}, token=member.access_token
    )
    assert digest.status == 200
    assert await notify(ctx, draft(member, owner, workspace["id"])) is not None
    mine = await api.get(path, token=owner.access_token)  # one user's choice is theirs alone
    assert {p["kind"]: p["channel"] for p in mine.body["preferences"]}["document.mention"] == (
        "email_immediate"
    )


@pytest.mark.parametrize(
    "kind,body",
    [
        ("comment.liked", {"channel": "off"}),
        ("comment.mention%00", {"channel": "off"}),
        ("comment.mention", {"channel": "carrier_pigeon"}),
        ("comment.mention", {"channel": "off\u0000"}),
        ("comment.mention", {}),
        ("comment.mention", {"channel": "off", "also": 1}),
    ],
)
async def test_bad_preferences_are_400_and_change_nothing(api, ctx, kind, body):
    _, users = await workspace_with_empty_inboxes(api, ctx)
    token = users["owner"].access_token
    path = INBOX + "preferences/"
    response = await api.put(f"{path}{kind}/", body, token=token)
    assert (response.status, response.error_code) == (400, "validation_error"), response.body
    listed = await api.get(path, token=token)
    assert all(p["channel"] == p["default_channel"] for p in listed.body["preferences"])


@pytest.mark.parametrize("route", ROUTES, ids=lambda r: r.template.removeprefix(INBOX) or "list")
async def test_every_inbox_route_needs_a_signed_in_user(api, route):
    path = route.template.replace("{notification_id}", str(uuid.uuid4())).replace(
        "{kind}", "comment.mention"
    )
    for method in implemented_methods(route.handler):
        if method == "OPTIONS":
            continue
        body = None if method == "GET" else {}
        response = await api.request(method, path, body)
        assert (response.status, response.error_code) == (401, "missing_token"), (method, path)
