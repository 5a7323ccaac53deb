"""Comment text in search (issue 12 item 1): document and card comments are found by whoever may
view their target (the policy's SQL in the same query), with the thread and comment ids and the
anchored block; a deleted comment, a revoked grant or an archived card hides them at once."""

from __future__ import annotations

import random
import string
from urllib.parse import urlencode

import pytest

from tests.comments_support import COMMENTS, comment_world, start_thread

pytestmark = pytest.mark.timeout(60)


def word() -> str:
    return "".join(random.choices(string.ascii_lowercase, k=12))


async def search(api, token: str, q: str, **params: str) -> list[dict]:  # type: ignore[no-untyped-def]
    got = await api.get(f"/api/v1/search/?{urlencode({'q': q, **params})}", token=token)
    assert got.status == 200, got.body
    return list(got.body["results"])


async def test_comments_are_found_by_those_who_may_view_their_target(api, ctx):
    w = await comment_world(api, ctx)
    on_doc, on_card = word(), word()
    doc_thread = await start_thread(
        api,
        w.doc_threads(),
        w.token("commenter"),
        f"Is {on_doc} right?",
        anchor={"block_id": "block-7"},
    )
    card_thread = await start_thread(api, w.card_threads(), w.token("editor"), f"see {on_card}")

    (hit,) = await search(api, w.token("viewer"), on_doc)
    assert hit["type"] == "comment" and hit["document_id"] == w.doc_id
    assert hit["block_id"] == "block-7" and hit["thread_id"] == doc_thread["id"]
    assert hit["comment_id"] == doc_thread["comments"][0]["id"]
    assert hit["author_id"] == w.users["commenter"].id and hit["title"] == "Spec"
    assert hit["link"] == f"/api/v1/threads/{doc_thread['id']}/"
    assert f"<mark>{on_doc}</mark>" in hit["snippet"]
    (card_hit,) = await search(api, w.token("viewer"), on_card, type="comment")
    assert card_hit["card_id"] == w.card_id and card_hit["board_id"] == w.board_id
    assert card_hit["thread_id"] == card_thread["id"] and card_hit["document_id"] is None

    assert await search(api, w.token("viewer"), on_doc, type="block,card,document") == []
    by_author = await search(api, w.token("owner"), on_doc, author_id=w.users["editor"].id)
    assert by_author == []
    for role in ("guest", "outsider"):  # no grant / not in the workspace: nothing, not a count
        assert await search(api, w.token(role), on_doc) == []
        assert await search(api, w.token(role), on_card) == []

    revoked = await api.delete(
        f"/api/v1/documents/{w.doc_id}/grants/{w.users['viewer'].id}/", token=w.token("owner")
    )
    assert revoked.status == 204
    assert await search(api, w.token("viewer"), on_doc) == []

    deleted = await api.delete(
        f"{COMMENTS}{card_thread['comments'][0]['id']}/", token=w.token("editor")
    )
    assert deleted.status == 200 and deleted.body["deleted"], deleted.body
    assert await search(api, w.token("owner"), on_card) == []
