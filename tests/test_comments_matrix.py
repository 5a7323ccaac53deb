"""Every comment endpoint × every role, on a document and on a card; and bad input on each body.

The expected statuses are written out (the module docstring of `services/comments.py` in test
form): 404 for outsiders, 403 for members without the right, the success status otherwise.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Awaitable, Callable
from typing import Any

import pytest

from tests.comments_support import COMMENTS, ROLES, THREADS, World, body, comment_world
from tests.documents_support import join
from tests.ws_helpers import fast_user

OK, NO, HIDDEN = "ok", 403, 404
# What each role may do on a document or card thread (on cards the roles are board roles).
VIEW = {"owner": OK, "admin": OK, "editor": OK, "commenter": OK, "viewer": OK, "guest": NO}
COMMENT = {**VIEW, "viewer": NO}
# Edit someone else's comment: nobody (only its author).
EDIT_OTHERS = {role: NO for role in VIEW}
# Delete someone else's comment: managers only (moderation).
MODERATE = {**{role: NO for role in VIEW}, "owner": OK, "admin": OK}
for table in (VIEW, COMMENT, EDIT_OTHERS, MODERATE):
    table["outsider"] = HIDDEN

Call = Callable[[Any, World, str, dict], Awaitable[Any]]


async def _list(api, w, token, t):
    return await api.get(t["list"], token=token)


async def _create(api, w, token, t):
    return await api.post(t["list"], {"body": body("new")}, token=token)


async def _get(api, w, token, t):
    return await api.get(f"{THREADS}{t['thread']}/", token=token)


async def _reply(api, w, token, t):
    return await api.post(f"{THREADS}{t['thread']}/comments/", {"body": body("r")}, token=token)


async def _resolve(api, w, token, t):
    return await api.post(f"{THREADS}{t['thread']}/resolve/", token=token)


async def _reopen(api, w, token, t):
    return await api.post(f"{THREADS}{t['thread']}/reopen/", token=token)


async def _react(api, w, token, t):
    return await api.put(f"{COMMENTS}{t['comment']}/reactions/eyes/", token=token)


async def _unreact(api, w, token, t):
    return await api.delete(f"{COMMENTS}{t['comment']}/reactions/eyes/", token=token)


async def _edit_others(api, w, token, t):
    return await api.patch(f"{COMMENTS}{t['comment']}/", {"body": body("x")}, token=token)


async def _delete_others(api, w, token, t):
    return await api.delete(f"{COMMENTS}{t['comment']}/", token=token)


ENDPOINTS: list[tuple[str, Call, dict[str, Any]]] = [
    ("list", _list, VIEW),
    ("create", _create, COMMENT),
    ("get", _get, VIEW),
    ("reply", _reply, COMMENT),
    ("resolve", _resolve, COMMENT),
    ("reopen", _reopen, COMMENT),
    ("react", _react, COMMENT),
    ("unreact", _unreact, COMMENT),
    ("edit_others", _edit_others, EDIT_OTHERS),
    ("delete_others", _delete_others, MODERATE),
]


async def _fresh_thread(api, w: World, kind: str) -> dict[str, str]:
    """A thread whose comment belongs to a user no role of the matrix is (the second owner)."""
    path = w.doc_threads() if kind == "document" else w.card_threads()
    made = await api.post(path, {"body": body("by the author")}, token=w.token("author"))
    assert made.status == 201, made.body
    return {"list": path, "thread": made.body["id"], "comment": made.body["comments"][0]["id"]}


@pytest.mark.parametrize("kind", ["document", "card"])
async def test_permission_matrix(api, ctx, kind):
    # 70 threads by one author: far beyond a human's budget (the flood limit is tested elsewhere).
    ctx.settings = dataclasses.replace(ctx.settings, comment_writes_per_min=10_000)
    w = await comment_world(api, ctx)
    w.users["author"] = await fast_user(ctx, "author")
    await join(ctx, w.workspace_id, w.users["author"], "admin")
    failures = []
    for name, call, expected in ENDPOINTS:
        for role in ROLES:
            target = await _fresh_thread(api, w, kind)
            response = await call(api, w, w.token(role), target)
            want = expected[role]
            ok = response.status in (200, 201) if want == OK else response.status == want
            if not ok:
                failures.append((name, role, want, response.status, response.body))
            if want != OK:
                # A refusal changes nothing.
                stored = await ctx.db.fetchrow(
                    "SELECT t.status, (SELECT count(*) FROM comments WHERE thread_id = t.id) AS n,"
                    " (SELECT count(*) FROM comment_reactions r JOIN comments c"
                    "   ON c.id = r.comment_id WHERE c.thread_id = t.id) AS reactions,"
                    " (SELECT deleted_at IS NULL AND edited_at IS NULL FROM comments"
                    "   WHERE id = $2) AS untouched"
                    " FROM comment_threads t WHERE t.id = $1",
                    target["thread"],
                    target["comment"],
                )
                assert tuple(stored) == ("open", 1, 0, True), (name, role)
    assert failures == []


def _deep(levels: int) -> Any:
    value: Any = "x"
    for _ in range(levels):
        value = [value]
    return value


BAD_BODIES = {
    "nul": body("a\u0000b"),
    "not a doc": {"type": "html", "content": []},
    "empty": {"type": "doc", "content": []},
    "blank": body("   "),
    "unknown node": body({"type": "image", "src": "https://x"}),
    "script link": body({"type": "link", "href": "javascript:alert(1)", "text": "x"}),
    "mention not uuid": body({"type": "mention", "user_id": "@bob"}),
    "unknown field": {**body("x"), "html": "<b>"},
    "huge": body("x" * 10_001),
    "many paragraphs": {
        "type": "doc",
        "content": [{"type": "paragraph", "content": [{"type": "text", "text": "a"}]}] * 201,
    },
    "deep": {"type": "doc", "content": _deep(70)},
    "not an object": ["doc"],
}


@pytest.mark.parametrize("case", list(BAD_BODIES))
async def test_bad_bodies_are_refused_and_change_nothing(api, ctx, case):
    w = await comment_world(api, ctx)
    thread = await _fresh_thread_as_owner(api, w)
    token = w.token("owner")
    bad = BAD_BODIES[case]
    attempts = [
        await api.post(w.doc_threads(), {"body": bad}, token=token),
        await api.post(f"{THREADS}{thread['id']}/comments/", {"body": bad}, token=token),
        await api.patch(f"{COMMENTS}{thread['comment']}/", {"body": bad}, token=token),
    ]
    for response in attempts:
        assert (response.status, response.error_code) == (400, "validation_error"), response.body
    counts = await ctx.db.fetchrow(
        "SELECT (SELECT count(*) FROM comment_threads WHERE document_id = $1) AS threads,"
        " (SELECT count(*) FROM comments WHERE thread_id = $2) AS comments,"
        " (SELECT edited_at FROM comments WHERE id = $3) AS edited",
        w.doc_id,
        thread["id"],
        thread["comment"],
    )
    assert tuple(counts) == (1, 1, None)


async def _fresh_thread_as_owner(api, w: World) -> dict[str, str]:
    made = await api.post(w.doc_threads(), {"body": body("ok")}, token=w.token("owner"))
    assert made.status == 201, made.body
    return {"id": made.body["id"], "comment": made.body["comments"][0]["id"]}


async def test_raw_bad_input_and_reactions(api, ctx):
    w = await comment_world(api, ctx)
    thread = await _fresh_thread_as_owner(api, w)
    token = w.token("owner")
    surrogate = (
        b'{"body": {"type": "doc", "content": [{"type": "paragraph", "content": ['
        b'{"type": "text", "text": "\\ud800"}]}]}}'
    )
    deep = ("[" * 100_000 + "]" * 100_000).encode()
    for raw in (surrogate, deep, b"{not json", json.dumps({"body": body("x"), "x": 1}).encode()):
        refused = await api.request("POST", w.doc_threads(), raw=raw, token=token)
        assert (refused.status, refused.error_code) == (400, "validation_error"), raw[:40]
    bad_anchor = await api.post(
        w.doc_threads(),
        {"body": body("x"), "anchor": {"block_id": "b", "start": {"item": {"client": -1}}}},
        token=token,
    )
    assert bad_anchor.status == 400
    item = {"item": {"client": 1, "clock": 2}, "assoc": 0}
    for anchor in (
        {"block_id": "b", "start": item},  # half a range
        {"block_id": "b", "start": {"assoc": 0}, "end": item},  # refers to nothing
        {"block_id": "b", "start": {**item, "tname": "x", "type": item["item"]}, "end": item},
        {"block_id": "b", "start": {"item": {"client": 1, "clock": 2**32}}, "end": item},
        {"block_id": "", "start": None},
    ):
        refused = await api.post(
            w.doc_threads(), {"body": body("x"), "anchor": anchor}, token=token
        )
        assert (refused.status, refused.error_code) == (400, "validation_error"), anchor
    for emoji in ("poop", "%F0%9F%92%A9", "heart%00"):
        refused = await api.put(f"{COMMENTS}{thread['comment']}/reactions/{emoji}/", token=token)
        assert (refused.status, refused.error_code) == (400, "validation_error"), emoji
    assert (
        await ctx.db.fetchval(
            "SELECT count(*) FROM comment_reactions r JOIN comments c"
            " ON c.id = r.comment_id WHERE c.thread_id = $1",
            thread["id"],
        )
        == 0
    )
    unknown = await api.get(f"{THREADS}{'0' * 8}-0000-4000-8000-{'0' * 12}/", token=token)
    assert unknown.status == 404
    not_uuid = await api.get(f"{THREADS}nope/", token=token)
    assert not_uuid.status == 404
    too_big = await api.post(
        w.doc_threads(), raw=b'{"body": "' + b"x" * 2_000_000 + b'"}', token=token
    )
    assert too_big.status == 413
