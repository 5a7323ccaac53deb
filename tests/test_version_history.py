"""Version authors (from the log's Collab-User, kept across compaction) and the block diff between
two versions, on documents written by real BlockNote clients of two users plus a REST edit."""

from __future__ import annotations

import copy

import pytest

from services.snapshots import snapshot_document
from tests.realtime_support import document_with, ws_base
from tests.test_editor_content import BLOCKNOTE_DOC, content_when, save_version
from tests.yjs_client import YjsNodeClients

pytestmark = pytest.mark.timeout(120)

DOCS = "/api/v1/documents/"


def people(version: dict) -> tuple[list[str], list[str]]:
    return (
        [p["user_id"] for p in version["authors"]],
        [p["user_id"] for p in version["edited_by"]],
    )


async def test_authors_and_diff_between_versions(api, ctx, ws_port):
    setup = await document_with(ctx, "editor", "member")
    owner, ada, bob = (setup.users[r] for r in ("owner", "editor", "member"))
    url = ws_base(ws_port)
    async with YjsNodeClients() as clients:
        await clients.connect("ada", url, setup.doc_id, ada.access_token)
        await clients.connect("bob", url, setup.doc_id, bob.access_token)
        await clients.wait_synced("ada")
        await clients.wait_synced("bob")
        await clients.editor_write("ada", "blocknote", BLOCKNOTE_DOC)
        await clients.editor_wait("bob", "blocknote", "line two")
        await content_when(api, setup, lambda c: len(c["blocks"]) == 4)
        v1 = await save_version(api, setup, "v1")

        # Compaction: the log entries of v1 are purged later, their authors must survive.
        assert (await snapshot_document(ctx, setup.doc_id)).status == "snapshotted"

        blocks = copy.deepcopy(await clients.editor_read("bob", "blocknote"))
        h1, p1, t1, i1 = blocks
        h1["content"][0]["text"] = "Plans"
        p1["children"] = [c for c in p1["children"] if c["id"] != "c1"]
        new = {"id": "n1", "type": "paragraph", "content": "new block", "children": []}
        await clients.editor_write("bob", "blocknote", [i1, h1, p1, t1, new])
        await clients.editor_wait("ada", "blocknote", "new block")
        patched = await api.patch(
            f"{DOCS}{setup.doc_id}/blocks/p1/",
            {"props": {"textAlignment": "center"}},
            token=owner.access_token,
        )
        assert patched.status == 200, patched.body
        v2 = await save_version(api, setup, "v2")

    await snapshot_document(ctx, setup.doc_id)  # purges through the previous snapshot (v1's log)
    await snapshot_document(ctx, setup.doc_id)
    got = {}
    for version in (v1, v2):
        response = await api.get(
            f"{DOCS}{setup.doc_id}/versions/{version['id']}/", token=owner.access_token
        )
        assert response.status == 200, response.body
        got[version["id"]] = response.body
    assert people(got[v1["id"]]) == ([ada.id], [ada.id])
    authors, edited = people(got[v2["id"]])
    assert authors == [ada.id, bob.id, owner.id]
    assert edited == [bob.id, owner.id]
    assert got[v2["id"]]["authors"][0]["display_name"] is not None

    diff = await api.get(
        f"{DOCS}{setup.doc_id}/versions/{v1['id']}/diff/{v2['id']}/", token=owner.access_token
    )
    assert diff.status == 200, diff.body
    body = diff.body
    assert (body["from"]["id"], body["to"]["id"]) == (v1["id"], v2["id"])
    changes = body["blocks"]
    assert [b["id"] for b in changes["added"]] == ["n1"]
    assert [(b["id"], b["parent_id"]) for b in changes["removed"]] == [("c1", "p1")]
    assert [m["id"] for m in changes["moved"]] == ["i1"]  # the others only shifted
    by_id = {c["id"]: c for c in changes["changed"]}
    assert set(by_id) == {"h1", "p1"}
    assert by_id["h1"]["text"] == [{"op": "equal", "text": "Plan"}, {"op": "insert", "text": "s"}]
    assert by_id["p1"]["props"] == {"textAlignment": {"from": "left", "to": "center"}}
    assert body["roots"] == {"added": [], "removed": [], "changed": []}

    back = await api.get(
        f"{DOCS}{setup.doc_id}/versions/{v2['id']}/diff/{v1['id']}/", token=owner.access_token
    )
    assert [b["id"] for b in back.body["blocks"]["removed"]] == ["n1"]
    missing = await api.get(
        f"{DOCS}{setup.doc_id}/versions/{v1['id']}/diff/{setup.doc_id}/", token=owner.access_token
    )
    assert missing.status == 404
