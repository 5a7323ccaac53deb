"""Comment threads over REST: the life of a thread, lists and filters, targets going away,
mentions, and the flood limit (the permission matrix and bad input: test_comments_matrix.py)."""

from __future__ import annotations

import dataclasses
import uuid

from tests.comments_support import COMMENTS, THREADS, body, comment_world, mention, start_thread


async def test_a_thread_from_start_to_resolution(api, ctx):
    w = await comment_world(api, ctx)
    anchor = {
        "block_id": "block-1",
        "start": {"type": None, "tname": None, "item": {"client": 7, "clock": 3}, "assoc": 0},
        "end": {"type": None, "tname": None, "item": {"client": 7, "clock": 9}, "assoc": -1},
        "quoted_text": "the quoted words",
    }
    thread = await start_thread(
        api, w.doc_threads(), w.token("commenter"), "Is this right?", anchor=anchor
    )
    assert thread["document_id"] == w.doc_id and thread["card_id"] is None
    # The document has no block-1 (it is empty): the server says so from the start, and keeps
    # the words the client quoted.
    assert thread["anchor"] == {
        "block_id": "block-1",
        "start": anchor["start"],
        "end": anchor["end"],
        "state": "orphaned",
        "quoted_text": "the quoted words",
    }
    assert (thread["status"], thread["comment_count"], thread["unnotified_mentions"]) == (
        "open",
        1,
        [],
    )
    top = thread["comments"][0]
    assert (top["author_id"], top["parent_id"], top["text"]) == (
        w.users["commenter"].id,
        None,
        "Is this right?",
    )

    reply = await api.post(
        f"{THREADS}{thread['id']}/comments/",
        {"body": body("Yes, ", mention(w.users["commenter"].id))},
        token=w.token("editor"),
    )
    assert reply.status == 201, reply.body
    # One level: a reply's parent is the top comment.
    assert reply.body["parent_id"] == top["id"]
    assert reply.body["text"] == "Yes, @Commenter"
    assert reply.body["mentions"] == [w.users["commenter"].id]

    edited = await api.patch(
        f"{COMMENTS}{top['id']}/", {"body": body("Is this right now?")}, token=w.token("commenter")
    )
    assert edited.status == 200, edited.body
    assert (edited.body["edited"], edited.body["text"]) == (True, "Is this right now?")

    reacted = await api.put(f"{COMMENTS}{top['id']}/reactions/heart/", token=w.token("viewer"))
    assert reacted.status == 403  # viewers read only
    for role in ("editor", "commenter", "editor"):  # again: idempotent
        reacted = await api.put(f"{COMMENTS}{top['id']}/reactions/heart/", token=w.token(role))
        assert reacted.status == 200, reacted.body
    assert reacted.body["reactions"] == [
        {
            "emoji": "heart",
            "count": 2,
            "user_ids": [w.users["editor"].id, w.users["commenter"].id],
        }
    ]
    taken_back = await api.delete(
        f"{COMMENTS}{top['id']}/reactions/heart/", token=w.token("editor")
    )
    assert taken_back.body["reactions"][0]["user_ids"] == [w.users["commenter"].id]

    resolved = await api.post(f"{THREADS}{thread['id']}/resolve/", token=w.token("editor"))
    assert resolved.status == 200, resolved.body
    assert (resolved.body["status"], resolved.body["resolved_by"]) == (
        "resolved",
        w.users["editor"].id,
    )
    assert resolved.body["resolved_at"] is not None
    reopened = await api.post(f"{THREADS}{thread['id']}/reopen/", token=w.token("commenter"))
    assert (reopened.body["status"], reopened.body["resolved_by"]) == ("open", None)

    # The author deletes the top comment: a tombstone keeps the thread's shape.
    deleted = await api.delete(f"{COMMENTS}{top['id']}/", token=w.token("commenter"))
    assert deleted.status == 200, deleted.body
    assert (deleted.body["deleted"], deleted.body["body"], deleted.body["reactions"]) == (
        True,
        None,
        [],
    )
    again = await api.patch(
        f"{COMMENTS}{top['id']}/", {"body": body("back")}, token=w.token("commenter")
    )
    assert (again.status, again.error_code) == (409, "comment_deleted")
    read = await api.get(f"{THREADS}{thread['id']}/", token=w.token("viewer"))
    assert [c["deleted"] for c in read.body["comments"]] == [True, False]
    assert read.body["comment_count"] == 2


async def test_lists_page_and_filter(api, ctx):
    w = await comment_world(api, ctx)
    owner, editor = w.token("owner"), w.token("editor")
    a = await start_thread(api, w.doc_threads(), owner, "a", anchor={"block_id": "b1"})
    b = await start_thread(api, w.doc_threads(), editor, "b", anchor={"block_id": "b2"})
    c = await start_thread(api, w.doc_threads(), owner, "c")
    await api.post(f"{THREADS}{b['id']}/resolve/", token=owner)
    await api.post(f"{THREADS}{c['id']}/comments/", {"body": body("r")}, token=editor)

    async def ids(query: str = "") -> list[str]:
        page = await api.get(f"{w.doc_threads()}{query}", token=w.token("viewer"))
        assert page.status == 200, page.body
        return [t["id"] for t in page.body["items"]]

    assert await ids() == [a["id"], b["id"], c["id"]]
    assert await ids("?status=open") == [a["id"], c["id"]]
    assert await ids("?status=resolved") == [b["id"]]
    assert await ids("?block_id=b2") == [b["id"]]
    # By author: who started the thread or wrote in it.
    assert await ids(f"?author_id={w.users['editor'].id}") == [b["id"], c["id"]]
    first = await api.get(f"{w.doc_threads()}?limit=2", token=owner)
    assert (len(first.body["items"]), first.body["next_offset"]) == (2, 2)
    last = await api.get(f"{w.doc_threads()}?limit=2&offset=2", token=owner)
    assert ([t["id"] for t in last.body["items"]], last.body["next_offset"]) == ([c["id"]], None)
    for bad in ("?status=closed", "?limit=0", "?author_id=nope", "?block_id=%00"):
        refused = await api.get(f"{w.doc_threads()}{bad}", token=owner)
        assert (refused.status, refused.error_code) == (400, "validation_error"), bad


async def test_card_threads_follow_the_board(api, ctx):
    w = await comment_world(api, ctx)
    thread = await start_thread(api, w.card_threads(), w.token("commenter"), "on the card")
    assert (thread["card_id"], thread["board_id"], thread["anchor"]) == (
        w.card_id,
        w.board_id,
        None,
    )
    listed = await api.get(w.card_threads(), token=w.token("viewer"))
    assert [t["id"] for t in listed.body["items"]] == [thread["id"]]
    with_anchor = await api.post(
        w.card_threads(), {"body": body("x"), "anchor": {"block_id": "b"}}, token=w.token("owner")
    )
    assert (with_anchor.status, with_anchor.error_code) == (400, "validation_error")
    # Deleting the card archives its threads: gone from every read, kept in the table.
    card = await api.get(f"/api/v1/cards/{w.card_id}/", token=w.token("owner"))
    deleted = await api.delete(f"/api/v1/cards/{w.card_id}/", token=w.token("owner"))
    assert deleted.status == 204, (deleted.body, card.body)
    assert (await api.get(f"{THREADS}{thread['id']}/", token=w.token("owner"))).status == 404
    archived = await ctx.db.fetchval(
        "SELECT archived_at IS NOT NULL FROM comment_threads WHERE id = $1", thread["id"]
    )
    assert archived is True


async def test_deleting_the_document_archives_its_threads(api, ctx):
    w = await comment_world(api, ctx)
    thread = await start_thread(api, w.doc_threads(), w.token("owner"))
    assert (
        await api.delete(f"/api/v1/documents/{w.doc_id}/", token=w.token("owner"))
    ).status == 204
    assert (await api.get(f"{THREADS}{thread['id']}/", token=w.token("owner"))).status == 404
    assert (await api.get(w.doc_threads(), token=w.token("owner"))).status == 404
    row = await ctx.db.fetchrow(
        "SELECT archived_at, (SELECT count(*) FROM comments WHERE thread_id = $1) AS n"
        " FROM comment_threads WHERE id = $1",
        thread["id"],
    )
    assert row["archived_at"] is not None and row["n"] == 1


async def test_mentions_unknown_ignored_no_access_reported_to_the_author_only(api, ctx):
    w = await comment_world(api, ctx)
    nobody = str(uuid.uuid4())
    created = await api.post(
        w.doc_threads(),
        {
            "body": body(
                mention(w.users["viewer"].id),
                mention(w.users["guest"].id),  # a member who cannot read the document
                mention(nobody),  # no such user: dropped
                mention(w.users["outsider"].id),  # not in the workspace: dropped
                " look",
            )
        },
        token=w.token("editor"),
    )
    assert created.status == 201, created.body
    top = created.body["comments"][0]
    assert top["mentions"] == [w.users["viewer"].id, w.users["guest"].id]
    assert created.body["unnotified_mentions"] == [w.users["guest"].id]
    # Readers see the comment, never the report.
    read = await api.get(f"{THREADS}{created.body['id']}/", token=w.token("viewer"))
    assert "unnotified_mentions" not in read.body


async def test_a_removed_members_threads_stay_readable(api, ctx):
    w = await comment_world(api, ctx)
    thread = await start_thread(api, w.doc_threads(), w.token("editor"), "I was here")
    removed = await api.delete(
        f"/api/v1/workspaces/{w.workspace_id}/members/{w.users['editor'].id}/",
        token=w.token("owner"),
    )
    assert removed.status == 204, removed.body
    read = await api.get(f"{THREADS}{thread['id']}/", token=w.token("viewer"))
    assert read.status == 200
    assert read.body["comments"][0]["text"] == "I was here"
    assert read.body["comments"][0]["author_id"] == w.users["editor"].id
    # …and they themselves no longer can.
    assert (await api.get(f"{THREADS}{thread['id']}/", token=w.token("editor"))).status == 404


async def test_managers_moderate_others_do_not(api, ctx):
    w = await comment_world(api, ctx)
    thread = await start_thread(api, w.doc_threads(), w.token("commenter"), "spam")
    comment_id = thread["comments"][0]["id"]
    for role in ("editor", "viewer"):
        refused = await api.delete(f"{COMMENTS}{comment_id}/", token=w.token(role))
        assert refused.status == 403, role
    edit = await api.patch(f"{COMMENTS}{comment_id}/", {"body": body("x")}, token=w.token("owner"))
    assert (edit.status, edit.error_code) == (403, "not_author")
    moderated = await api.delete(f"{COMMENTS}{comment_id}/", token=w.token("admin"))
    assert moderated.status == 200 and moderated.body["deleted"] is True
    row = await ctx.db.fetchrow("SELECT deleted_by FROM comments WHERE id = $1", comment_id)
    assert str(row["deleted_by"]) == w.users["admin"].id


async def test_a_flood_of_comments_is_rate_limited(api, ctx):
    # A small budget keeps the test short (the limit is read per write).
    ctx.settings = dataclasses.replace(ctx.settings, comment_writes_per_min=4)
    w = await comment_world(api, ctx)
    thread = await start_thread(api, w.doc_threads(), w.token("editor"))
    statuses = []
    # Fixed one-minute windows: twice the budget plus one crosses it even across a boundary.
    for _ in range(2 * 4 + 1):
        sent = await api.post(
            f"{THREADS}{thread['id']}/comments/", {"body": body("more")}, token=w.token("editor")
        )
        statuses.append(sent.status)
        if sent.status == 429:
            assert int(sent.headers["Retry-After"]) >= 1
            break
    assert statuses[-1] == 429 and set(statuses[:-1]) == {201}
    # Another user is not affected.
    other = await api.post(
        f"{THREADS}{thread['id']}/comments/", {"body": body("me")}, token=w.token("owner")
    )
    assert other.status == 201
    count = await ctx.db.fetchval(
        "SELECT count(*) FROM comments WHERE thread_id = $1", thread["id"]
    )
    assert count == 1 + statuses.count(201) + 1
