"""Versions: named, automatic (from snapshots), one version's content, and restore as a new update
that every live subscriber converges to; retried restores are applied once; permissions and IDs."""

from __future__ import annotations

import asyncio
import uuid

import pycrdt
import pytest

from bus.doc_log import DocLog, LogEntry
from services.doc_content import to_json
from services.snapshots import snapshot_document
from tests.documents_support import (
    Writer,
    content_of,
    create,
    grant,
    join,
    make_workspace,
    root_text,
)
from tests.ws_helpers import fast_user

DOCS = "/api/v1/documents/"


@pytest.fixture
def doc_log(ctx) -> DocLog:
    return ctx.doc_log


class LiveEditor:
    """Stands in for a room: a doc fed by the log subscription, as the rooms hold one."""

    def __init__(self, doc: pycrdt.Doc) -> None:
        self.doc = doc
        self.seq = 0
        self.changed = asyncio.Event()

    def on_entry(self, entry: LogEntry) -> None:
        self.doc.apply_update(entry.update)
        self.seq = entry.seq
        self.changed.set()

    async def wait_for(self, seq: int) -> None:
        while self.seq < seq:
            self.changed.clear()
            await asyncio.wait_for(self.changed.wait(), 5)


async def setup_doc(api, ctx, doc_log):
    owner = await fast_user(ctx, "owner")
    ws = await make_workspace(api, owner)
    doc = await create(api, owner, ws, title="Doc")
    return owner, ws, doc["id"], Writer(doc_log, doc["id"])


async def name_version(api, user, doc_id: str, name: str) -> dict:
    response = await api.post(f"{DOCS}{doc_id}/versions/", {"name": name}, token=user.access_token)
    assert response.status == 201, response.body
    return response.body


async def restore(api, user, doc_id: str, version_id: str, key: str | None = None):
    headers = {"Idempotency-Key": key} if key else None
    return await api.post(
        f"{DOCS}{doc_id}/versions/{version_id}/restore/", token=user.access_token, headers=headers
    )


async def test_named_versions_are_listed_and_readable(api, ctx, doc_log):
    owner, _ws, doc_id, writer = await setup_doc(api, ctx, doc_log)
    await writer.add_block("b1", "draft one")
    seq = await writer.type_text("v1")
    v1 = await name_version(api, owner, doc_id, "  First draft ")
    assert (v1["name"], v1["kind"], v1["seq"], v1["created_by"]) == (
        "First draft",
        "named",
        seq,
        owner.id,
    )
    await writer.type_text(" and more")
    v2 = await name_version(api, owner, doc_id, "Second")
    listed = await api.get(f"{DOCS}{doc_id}/versions/", token=owner.access_token)
    assert [v["id"] for v in listed.body["items"]] == [v2["id"], v1["id"]]
    one = await api.get(f"{DOCS}{doc_id}/versions/{v1['id']}/", token=owner.access_token)
    assert one.status == 200 and root_text(one.body["content"]) == "v1"
    assert one.body["content"]["blocks"][0]["text"] == "draft one"


async def test_automatic_versions_come_from_snapshots(api, ctx, doc_log):
    owner, _ws, doc_id, writer = await setup_doc(api, ctx, doc_log)
    await writer.type_text("auto")
    result = await snapshot_document(ctx, doc_id)
    assert result.auto_version
    listed = await api.get(f"{DOCS}{doc_id}/versions/", token=owner.access_token)
    (auto,) = listed.body["items"]
    assert (auto["kind"], auto["seq"], auto["name"], auto["created_by"]) == (
        "auto",
        result.seq,
        None,
        None,
    )


async def test_restore_converges_live_editors_and_keeps_history(api, ctx, doc_log):
    owner, _ws, doc_id, writer = await setup_doc(api, ctx, doc_log)
    await writer.add_block("b1", "keep me")
    await writer.type_text("original")
    v1 = await name_version(api, owner, doc_id, "v1")
    await writer.add_block("b2", "added later")
    await writer.type_text(" edited")
    await snapshot_document(ctx, doc_id)  # restore works across snapshot + purge too
    editor = LiveEditor(pycrdt.Doc())
    subscription = await doc_log.subscribe(doc_id, 0, editor.on_entry)
    try:
        response = await restore(api, owner, doc_id, v1["id"], key="k1")
        assert response.status == 201, response.body
        body = response.body
        assert body["applied"] and body["restored_from"] == v1["id"]
        assert body["version"]["kind"] == "restore" and body["version"]["seq"] > v1["seq"]
        await editor.wait_for(body["version"]["seq"])
    finally:
        await subscription.stop()
    expected = await api.get(f"{DOCS}{doc_id}/versions/{v1['id']}/", token=owner.access_token)
    assert content_of(editor.doc) == expected.body["content"]
    # The writer (a client that made the undone edits) converges too, without duplicates.
    writer.doc.apply_update(editor.doc.get_update())
    assert content_of(writer.doc) == expected.body["content"]
    got = await api.get(f"{DOCS}{doc_id}/", token=owner.access_token)
    assert got.body["content"] == expected.body["content"]
    assert got.body["version"] == body["version"]["seq"]
    kinds = [
        v["kind"]
        for v in (await api.get(f"{DOCS}{doc_id}/versions/", token=owner.access_token)).body[
            "items"
        ]
    ]
    assert kinds.count("restore") == 1 and kinds.count("named") == 1
    restored = await api.get(
        f"{DOCS}{doc_id}/versions/{body['version']['id']}/", token=owner.access_token
    )
    assert restored.body["content"] == expected.body["content"]
    rows = await ctx.db.fetch("SELECT block_id FROM blocks WHERE document_id = $1", doc_id)
    assert [r["block_id"] for r in rows] == ["b1"]  # projection refreshed by the REST write


async def test_restore_keeps_a_concurrent_edit(api, ctx, doc_log):
    owner, _ws, doc_id, writer = await setup_doc(api, ctx, doc_log)
    await writer.add_block("b1", "one")
    v1 = await name_version(api, owner, doc_id, "v1")
    await writer.add_block("b2", "two")
    response = await restore(api, owner, doc_id, v1["id"])
    assert response.status == 201
    await writer.add_block("b3", "typed meanwhile")  # made without seeing the restore
    got = await api.get(f"{DOCS}{doc_id}/", token=owner.access_token)
    assert [b["id"] for b in got.body["content"]["blocks"]] == ["b1", "b3"]


async def test_retried_restore_is_applied_once(api, ctx, doc_log):
    owner, _ws, doc_id, writer = await setup_doc(api, ctx, doc_log)
    await writer.type_text("a")
    v1 = await name_version(api, owner, doc_id, "v1")
    await writer.type_text("b")
    first = await restore(api, owner, doc_id, v1["id"], key="retry-me")
    second = await restore(api, owner, doc_id, v1["id"], key="retry-me")
    assert (first.status, second.status) == (201, 200)
    assert second.body["applied"] is False
    assert second.body["version"] == first.body["version"]
    entries = await doc_log.read(doc_id, 0)
    msg_id = f"restore:{v1['id']}:retry-me"
    assert [e.msg_id for e in entries].count(msg_id) == 1
    # After the log is compacted (JetStream has forgotten the id), the durable map still knows.
    await writer.type_text("c")
    await snapshot_document(ctx, doc_id)
    await writer.type_text("d")
    await snapshot_document(ctx, doc_id)
    assert msg_id not in [e.msg_id for e in await doc_log.read(doc_id, 0)]
    late = await restore(api, owner, doc_id, v1["id"], key="retry-me")
    assert late.status == 200 and late.body["version"] == first.body["version"]
    got = await api.get(f"{DOCS}{doc_id}/", token=owner.access_token)
    assert root_text(got.body["content"]) == "acd"  # not restored a second time


async def test_concurrent_identical_restores_record_one_version(api, ctx, doc_log):
    owner, _ws, doc_id, writer = await setup_doc(api, ctx, doc_log)
    await writer.type_text("x")
    v1 = await name_version(api, owner, doc_id, "v1")
    await writer.type_text("y")
    results = await asyncio.gather(
        *(restore(api, owner, doc_id, v1["id"], key="same") for _ in range(3))
    )
    assert sorted(r.status for r in results) == [200, 200, 201]
    assert len({r.body["version"]["id"] for r in results}) == 1
    count = await ctx.db.fetchval(
        "SELECT count(*) FROM document_versions WHERE document_id = $1 AND kind = 'restore'",
        doc_id,
    )
    assert count == 1
    got = await api.get(f"{DOCS}{doc_id}/", token=owner.access_token)
    assert root_text(got.body["content"]) == "x"


async def test_version_permissions_and_wrong_ids(api, ctx, doc_log):
    owner, ws, doc_id, writer = await setup_doc(api, ctx, doc_log)
    await writer.type_text("t")
    v1 = await name_version(api, owner, doc_id, "v1")
    viewer, outsider = await fast_user(ctx, "viewer"), await fast_user(ctx, "outsider")
    await join(ctx, ws, viewer, "guest")
    await grant(ctx, doc_id, viewer, "viewer")
    other_doc = await create(api, owner, ws, title="other")
    base = f"{DOCS}{doc_id}/versions/"

    # A viewer reads versions but cannot name or restore one.
    assert (await api.get(base, token=viewer.access_token)).status == 200
    assert (await api.get(f"{base}{v1['id']}/", token=viewer.access_token)).status == 200
    named = await api.post(base, {"name": "mine"}, token=viewer.access_token)
    assert named.status == 403
    denied = await restore(api, viewer, doc_id, v1["id"])
    assert denied.status == 403
    # An outsider learns nothing (S12).
    for response in (
        await api.get(base, token=outsider.access_token),
        await api.get(f"{base}{v1['id']}/", token=outsider.access_token),
        await api.post(base, {"name": "x"}, token=outsider.access_token),
        await restore(api, outsider, doc_id, v1["id"]),
    ):
        assert response.status == 404
    # A version id of another document, random ids, malformed ids.
    cross = f"{DOCS}{other_doc['id']}/versions/{v1['id']}/"
    assert (await api.get(cross, token=owner.access_token)).status == 404
    assert (await restore(api, owner, other_doc["id"], v1["id"])).status == 404
    assert (await api.get(f"{base}{uuid.uuid4()}/", token=owner.access_token)).status == 404
    assert (await api.get(f"{base}nope/", token=owner.access_token)).status == 404
    assert (await restore(api, owner, doc_id, "nope")).status == 404
    assert (await api.get(f"{DOCS}nope/versions/", token=owner.access_token)).status == 404


@pytest.mark.parametrize(
    "body",
    [{}, {"name": ""}, {"name": "   "}, {"name": 3}, {"name": "x" * 201}, {"name": "a", "seq": 1}],
)
async def test_named_version_rejects_bad_input(api, ctx, doc_log, body):
    owner, _ws, doc_id, _writer = await setup_doc(api, ctx, doc_log)
    response = await api.post(f"{DOCS}{doc_id}/versions/", body, token=owner.access_token)
    assert response.status == 400, response.body


async def test_restore_rejects_a_body_and_bad_pages(api, ctx, doc_log):
    owner, _ws, doc_id, writer = await setup_doc(api, ctx, doc_log)
    await writer.type_text("t")
    v1 = await name_version(api, owner, doc_id, "v1")
    response = await api.post(
        f"{DOCS}{doc_id}/versions/{v1['id']}/restore/",
        {"state": "00"},
        token=owner.access_token,
    )
    assert response.status == 400
    page = await api.get(f"{DOCS}{doc_id}/versions/?limit=0", token=owner.access_token)
    assert page.status == 400


async def test_restoring_the_current_content_changes_nothing_and_says_so(api, ctx, doc_log):
    owner, _ws, doc_id, writer = await setup_doc(api, ctx, doc_log)
    await writer.add_block("b", "same")
    v1 = await name_version(api, owner, doc_id, "now")
    before = (await api.get(f"{DOCS}{doc_id}/", token=owner.access_token)).body
    unchanged = await restore(api, owner, doc_id, v1["id"])
    assert unchanged.status == 200
    assert unchanged.body["applied"] is False and unchanged.body["version"] is None
    after = (await api.get(f"{DOCS}{doc_id}/", token=owner.access_token)).body
    # Nothing published: the log did not move, no 'restore' version was recorded.
    assert after["content"] == before["content"] and after["version"] == before["version"]
    assert to_json(b"") != after["content"]
    listed = await api.get(f"{DOCS}{doc_id}/versions/", token=owner.access_token)
    assert [v["kind"] for v in listed.body["items"]] == ["named"]
