"""`services.notifications.notify`: who hears about what, the row, and the event on the user's
subject — against the real Postgres, NATS JetStream and Redis of the test stack."""

from __future__ import annotations

import uuid
from uuid import UUID

import pytest

from bus.events import EventSchemaError
from bus.jetstream import user_notification_subject
from bus.schemas.notifications import NotificationEventSchema
from models.repo import notifications as notifications_repo
from services import notifications
from services.unit_of_work import UnitOfWork, unit_of_work
from tests.notification_support import (
    draft,
    notify,
    rows_of,
    two_open_transactions,
    workspace_with_empty_inboxes,
)
from tests.ws_helpers import Collector, fast_user, grant, insert_document, ws_path


class Rollback(Exception):
    pass


async def test_notify_writes_the_row_and_publishes_the_event_after_commit(api, ctx):
    workspace, users = await workspace_with_empty_inboxes(api, ctx, "member")
    owner, member = users["owner"], users["member"]
    doc = await insert_document(ctx, workspace["id"], title="Plan")
    collector = await Collector().start(ctx, user_notification_subject(member.id))
    try:
        made = await notify(
            ctx,
            draft(member, owner, workspace["id"], document_id=UUID(doc), data={"title": "Plan"}),
        )
        event, headers = await collector.wait_for(lambda e: e["type"] == "notification.created")
    finally:
        await collector.stop()
    assert made is not None
    assert NotificationEventSchema().validate(event) == {}
    assert headers["Nats-Msg-Id"] == event["id"]
    assert event["user_id"] == member.id
    assert event["unread_count"] == 1
    item = event["notification"]
    assert item["id"] == str(made)
    assert (item["kind"], item["actor_id"], item["document_id"]) == (
        "document.mention",
        owner.id,
        doc,
    )
    assert item["data"] == {"title": "Plan"}
    assert item["group_key"] == f"document.mention:{doc}"
    [row] = await rows_of(ctx, member.id)
    # Mentions default to the inbox plus an immediate email.
    assert (str(row["id"]), row["channel"], row["read_at"]) == (str(made), "email_immediate", None)


async def test_replies_of_one_thread_share_a_group_and_the_count_grows(api, ctx):
    workspace, users = await workspace_with_empty_inboxes(api, ctx, "member")
    owner, member = users["owner"], users["member"]
    doc, thread = await insert_document(ctx, workspace["id"]), uuid.uuid4()
    for _ in range(4):
        await notify(
            ctx,
            draft(
                member,
                owner,
                workspace["id"],
                kind=notifications.THREAD_REPLY,
                document_id=UUID(doc),
                thread_id=thread,
                comment_id=uuid.uuid4(),
            ),
        )
    rows = await rows_of(ctx, member.id)
    assert {row["group_key"] for row in rows} == {f"thread:{thread}"}
    assert [row["channel"] for row in rows] == ["in_app"] * 4
    assert await notifications_repo.unread_count(ctx.db, member.id) == 4


async def test_nobody_is_notified_of_their_own_action(api, ctx):
    workspace, users = await workspace_with_empty_inboxes(api, ctx)
    owner = users["owner"]
    assert await notify(ctx, draft(owner, owner, workspace["id"])) is None
    assert await rows_of(ctx, owner.id) == []


async def test_off_preference_silences_that_kind_only(api, ctx):
    workspace, users = await workspace_with_empty_inboxes(api, ctx, "member")
    owner, member = users["owner"], users["member"]
    await notifications_repo.set_preference(ctx.db, member.id, "document.mention", "off")
    assert await notify(ctx, draft(member, owner, workspace["id"])) is None
    kept = await notify(ctx, draft(member, owner, workspace["id"], kind="access.granted"))
    assert [str(r["id"]) for r in await rows_of(ctx, member.id)] == [str(kept)]


async def test_only_people_who_may_see_it_are_notified(api, ctx):
    workspace, users = await workspace_with_empty_inboxes(api, ctx, "guest")
    owner, guest = users["owner"], users["guest"]
    outsider = await fast_user(ctx, "outsider")
    private = await insert_document(ctx, workspace["id"], private=True)
    about_private = draft(guest, owner, workspace["id"], document_id=UUID(private))
    assert await notify(ctx, about_private) is None  # a guest sees nothing unshared
    assert await notify(ctx, draft(outsider, owner, workspace["id"])) is None
    await grant(ctx, workspace["id"], "document", private, guest.id, "viewer")
    assert await notify(ctx, about_private) is not None
    assert len(await rows_of(ctx, guest.id)) == 1
    assert await rows_of(ctx, outsider.id) == []


async def test_a_grant_in_the_same_transaction_counts(api, ctx):
    workspace, users = await workspace_with_empty_inboxes(api, ctx, "guest")
    owner, guest = users["owner"], users["guest"]
    doc = await insert_document(ctx, workspace["id"])
    async with unit_of_work(ctx) as uow:
        await uow.conn.execute(
            "INSERT INTO document_grants (document_id, user_id, role) VALUES ($1, $2, 'viewer')",
            doc,
            guest.id,
        )
        made = await notifications.notify(
            uow, draft(guest, owner, workspace["id"], kind="access.granted", document_id=UUID(doc))
        )
    assert made is not None


async def test_a_removed_member_hears_nothing_more(api, ctx):
    workspace, users = await workspace_with_empty_inboxes(api, ctx, "member")
    owner, member = users["owner"], users["member"]
    assert await notify(ctx, draft(member, owner, workspace["id"])) is not None
    removed = await api.delete(
        ws_path(workspace["id"], f"members/{member.id}/"), token=owner.access_token
    )
    assert removed.status == 204, removed.body
    assert await notify(ctx, draft(member, owner, workspace["id"])) is None
    assert len(await rows_of(ctx, member.id)) == 1


async def test_an_invitation_reaches_someone_not_yet_a_member(api, ctx):
    workspace, users = await workspace_with_empty_inboxes(api, ctx)
    invitee = await fast_user(ctx, "invitee")
    made = await notify(
        ctx, draft(invitee, users["owner"], workspace["id"], kind="workspace.invited")
    )
    assert made is not None


async def test_a_rolled_back_change_leaves_no_row_and_no_event(api, ctx):
    workspace, users = await workspace_with_empty_inboxes(api, ctx, "member")
    owner, member = users["owner"], users["member"]
    collector = await Collector().start(ctx, user_notification_subject(member.id))
    try:
        with pytest.raises(Rollback):
            async with unit_of_work(ctx) as uow:
                assert await notifications.notify(uow, draft(member, owner, workspace["id"]))
                raise Rollback
        # A later committed notification arrives; the rolled-back one never does.
        await notify(ctx, draft(member, owner, workspace["id"], kind="access.granted"))
        await collector.wait_for(lambda e: e["notification"]["kind"] == "access.granted")
    finally:
        await collector.stop()
    assert [e["notification"]["kind"] for e, _ in collector.messages] == ["access.granted"]
    assert len(await rows_of(ctx, member.id)) == 1


@pytest.mark.parametrize(
    "bad",
    [
        {"kind": "comment.liked"},
        {"data": {"excerpt": "x" * 5000}},
        {"data": {"obj": object()}},
    ],
)
async def test_a_bad_draft_is_a_bug_and_rolls_back(api, ctx, bad):
    workspace, users = await workspace_with_empty_inboxes(api, ctx, "member")
    owner, member = users["owner"], users["member"]
    with pytest.raises(EventSchemaError):
        await notify(ctx, draft(member, owner, workspace["id"], **bad))
    assert await rows_of(ctx, member.id) == []


async def test_two_transactions_notifying_the_same_users_in_opposite_orders_both_commit(api, ctx):
    """No lock is held per inbox: a feature notifying A then B while another notifies B then A
    (a reply and a mention in one thread) must not deadlock (one would fail with a 500)."""
    workspace, users = await workspace_with_empty_inboxes(api, ctx, "member", "admin")
    owner, a, b = users["owner"], users["member"], users["admin"]

    def to(user):
        return lambda uow: notifications.notify(uow, draft(user, owner, workspace["id"]))

    await two_open_transactions(ctx, [to(a), to(b)], [to(b), to(a)])
    assert len(await rows_of(ctx, a.id)) == len(await rows_of(ctx, b.id)) == 2


async def test_the_relay_publishes_a_notification_held_back_by_a_nats_outage(api, ctx):
    """Staged and committed but never published inline (as when NATS was down then): the
    outbox relay job publishes it on the user's subject with its message id."""
    workspace, users = await workspace_with_empty_inboxes(api, ctx, "member")
    owner, member = users["owner"], users["member"]
    async with ctx.db.transaction() as conn:
        uow = UnitOfWork(conn)  # committed without the unit of work's publish step
        made = await notifications.notify(uow, draft(member, owner, workspace["id"]))
    [staged] = uow.staged
    collector = await Collector().start(ctx, user_notification_subject(member.id))
    try:
        assert await ctx.outbox.sweep(min_age_s=0) >= 1
        event, headers = await collector.wait_for(lambda e: e["id"] == staged.event.body["id"])
    finally:
        await collector.stop()
    assert event["notification"]["id"] == str(made)
    assert headers["Nats-Msg-Id"] == event["id"]
