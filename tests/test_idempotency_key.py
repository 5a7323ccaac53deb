"""A restore's `Idempotency-Key` that cannot be honoured is refused, not ignored (issue 17 item 6):
ignoring it made a retry a new attempt, which restored again and reverted edits made in between.
Other control characters never reach a handler: Tornado refuses them in any header (plain 400)."""

from __future__ import annotations

import pytest

from tests.documents_support import root_text
from tests.test_versions import DOCS, doc_log, name_version, restore, setup_doc

__all__ = ["doc_log"]  # the fixture, re-exported for pytest


@pytest.mark.parametrize("key", ["k" * 129, "tab\there", "caf\u00e9"])
async def test_malformed_key_is_refused_and_nothing_is_restored(api, ctx, doc_log, key):
    owner, _ws, doc_id, writer = await setup_doc(api, ctx, doc_log)
    await writer.type_text("a")
    v1 = await name_version(api, owner, doc_id, "v1")
    await writer.type_text("b")
    response = await restore(api, owner, doc_id, v1["id"], key=key)
    assert response.status == 400, response.body
    assert response.error_code == "validation_error"
    assert "Idempotency-Key" in response.body["error"]["fields"]
    got = await api.get(f"{DOCS}{doc_id}/", token=owner.access_token)
    assert root_text(got.body["content"]) == "ab"
    count = await ctx.db.fetchval(
        "SELECT count(*) FROM document_versions WHERE document_id = $1 AND kind = 'restore'",
        doc_id,
    )
    assert count == 0


async def test_longest_allowed_key_still_dedupes_a_retry(api, ctx, doc_log):
    owner, _ws, doc_id, writer = await setup_doc(api, ctx, doc_log)
    await writer.type_text("a")
    v1 = await name_version(api, owner, doc_id, "v1")
    await writer.type_text("b")
    key = "with space " + "k" * 117
    first = await restore(api, owner, doc_id, v1["id"], key=key)
    await writer.type_text("c")  # an edit between the attempt and its retry
    retry = await restore(api, owner, doc_id, v1["id"], key=key)
    assert (first.status, retry.status) == (201, 200)
    got = await api.get(f"{DOCS}{doc_id}/", token=owner.access_token)
    assert root_text(got.body["content"]) == "ac"  # the retry did not revert "c"
