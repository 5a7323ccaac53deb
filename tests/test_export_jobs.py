"""Stored exports (services/export_jobs.py): a small document is made in the request (201), a
large one and a workspace zip by the `export_document` job (202), with a history row and an
`export.ready` notification; the status and the file are the requester's only, the file only
while they may view what it holds and until it expires (410); bad input is a 400 that stores
nothing."""

from __future__ import annotations

import dataclasses
import io
import zipfile
from typing import Any

import pytest

from models.repo import job_runs
from services.export_jobs import EXPORT_JOB, FORGET_AFTER_S, MAX_PENDING_PER_USER
from tests.documents_support import Writer
from tests.realtime_support import DocSetup, document_with

pytestmark = pytest.mark.timeout(120)

DOCS = "/api/v1/documents/"
SYNC_MAX_BLOCKS = 3


@pytest.fixture
def settings(settings):  # type: ignore[no-untyped-def]
    return dataclasses.replace(settings, export_sync_max_blocks=SYNC_MAX_BLOCKS)


async def with_blocks(ctx, setup: DocSetup, count: int) -> None:  # type: ignore[no-untyped-def]
    writer = Writer(ctx.doc_log, setup.doc_id)
    for i in range(count):
        await writer.add_block(f"b{i}", f"block number {i}")


def token(setup: DocSetup, role: str = "owner") -> str:
    return setup.users[role].access_token


async def ask(api, setup: DocSetup, role: str = "owner", **body: Any):  # type: ignore[no-untyped-def]
    return await api.post(f"{DOCS}{setup.doc_id}/exports/", body, token=token(setup, role))


async def revoke(api, setup: DocSetup, role: str) -> None:  # type: ignore[no-untyped-def]
    path = f"{DOCS}{setup.doc_id}/grants/{setup.users[role].id}/"
    assert (await api.delete(path, token=token(setup))).status == 204


async def exports_count(ctx) -> int:  # type: ignore[no-untyped-def]
    return int(await ctx.db.fetchval("SELECT count(*) FROM exports"))


async def test_small_export_is_ready_at_once(api, ctx):
    setup = await document_with(ctx, "viewer")
    await with_blocks(ctx, setup, SYNC_MAX_BLOCKS)
    made = await ask(api, setup, "viewer", format="markdown")
    assert made.status == 201, made.body
    assert made.body["status"] == "ready" and made.body["filename"] == "Doc.md"
    assert made.headers["Location"] == made.body["status_url"]
    direct = await api.get(
        f"{DOCS}{setup.doc_id}/export/?format=markdown", token=token(setup, "viewer")
    )
    file = await api.get(made.body["download_url"], token=token(setup, "viewer"))
    assert file.status == 200 and file.body == direct.body
    assert file.headers["Content-Type"] == "text/markdown; charset=utf-8"
    assert "block number 2" in file.body
    status = await api.get(made.body["status_url"], token=token(setup, "viewer"))
    assert status.body == made.body


async def test_large_export_is_made_by_the_job_and_notified(api, ctx):
    setup = await document_with(ctx, "viewer")
    await with_blocks(ctx, setup, SYNC_MAX_BLOCKS + 1)
    asked = await ask(api, setup, "viewer", format="pdf")
    assert asked.status == 202, asked.body
    assert asked.body["status"] == "pending" and asked.body["download_url"] is None
    not_yet = await api.get(f"{asked.body['status_url']}file/", token=token(setup, "viewer"))
    assert not_yet.status == 409 and not_yet.error_code == "export_not_ready"
    # Written after the request: the export is the document as it was when asked for.
    await Writer(ctx.doc_log, setup.doc_id).add_block("late", "typed after the request")

    run = await ctx.scheduler.run_now(EXPORT_JOB)
    assert run.ran and run.result["ready"] == 1, run.result
    (history,) = await job_runs.recent_runs(ctx.db, EXPORT_JOB, 1)
    assert history["outcome"] == "ok" and history["counts"]["ready"] == 1

    status = await api.get(asked.body["status_url"], token=token(setup, "viewer"))
    assert status.body["status"] == "ready" and status.body["size_bytes"] > 0
    pdf = await api.client.fetch(
        status.body["download_url"],
        headers={"Authorization": f"Bearer {token(setup, 'viewer')}"},
    )
    assert pdf.headers["Content-Type"] == "application/pdf" and pdf.body.startswith(b"%PDF-")
    assert b"typed after" not in pdf.body
    notified = await ctx.db.fetchrow(
        "SELECT kind, document_id, data FROM notifications WHERE recipient_id = $1",
        setup.users["viewer"].id,
    )
    assert notified["kind"] == "export.ready"
    assert str(notified["document_id"]) == setup.doc_id
    assert notified["data"]["download_path"] == status.body["download_url"]


async def test_only_the_requester_while_allowed_and_until_expiry(api, ctx):
    setup = await document_with(ctx, "viewer", "editor")
    made = await ask(api, setup, "viewer", format="html")
    assert made.status == 201, made.body
    url = made.body["download_url"]
    # Another user who may view the document still cannot see someone else's export.
    for path in (made.body["status_url"], url):
        other = await api.get(path, token=token(setup, "editor"))
        assert other.status == 404 and other.error_code == "not_found", other.body
    assert (await api.get(url)).status == 401

    await revoke(api, setup, "viewer")
    lost = await api.get(url, token=token(setup, "viewer"))
    assert lost.status == 403, lost.body

    mine = await ask(api, setup, "owner", format="html")
    await ctx.db.execute(
        "UPDATE exports SET expires_at = now() - interval '1 second' WHERE id = $1",
        mine.body["id"],
    )
    gone = await api.get(mine.body["download_url"], token=token(setup))
    assert gone.status == 410 and gone.error_code == "export_expired"
    run = await ctx.scheduler.run_now(EXPORT_JOB)
    assert run.result["expired"] >= 1
    status = await api.get(mine.body["status_url"], token=token(setup))
    assert status.body["status"] == "expired" and status.body["download_url"] is None
    assert await ctx.db.fetchval("SELECT body IS NULL FROM exports WHERE id = $1", mine.body["id"])
    assert (await api.get(mine.body["download_url"], token=token(setup))).status == 410


async def test_access_lost_before_the_job_fails_the_export(api, ctx):
    setup = await document_with(ctx, "viewer")
    await with_blocks(ctx, setup, SYNC_MAX_BLOCKS + 1)
    asked = await ask(api, setup, "viewer", format="markdown")
    assert asked.status == 202
    await revoke(api, setup, "viewer")
    run = await ctx.scheduler.run_now(EXPORT_JOB)
    assert run.result["failed"] == 1, run.result
    status = await api.get(asked.body["status_url"], token=token(setup, "viewer"))
    assert status.body["status"] == "failed" and status.body["error"].startswith("forbidden")
    file = await api.get(f"{asked.body['status_url']}file/", token=token(setup, "viewer"))
    assert file.status == 403


async def test_workspace_zip_holds_what_the_caller_may_view_by_page_tree(api, ctx):
    setup = await document_with(ctx, "editor")
    await ctx.db.execute("UPDATE documents SET title = 'Home' WHERE id = $1", setup.doc_id)
    await with_blocks(ctx, setup, 1)

    async def page(title: str, parent: str | None, private: bool | None = None) -> str:
        return str(
            await ctx.db.fetchval(
                "INSERT INTO documents (workspace_id, parent_id, title, created_by, is_private)"
                " VALUES ($1, $2, $3, $4, $5) RETURNING id",
                setup.workspace_id,
                parent,
                title,
                setup.users["owner"].id,
                private,
            )
        )

    plans = await page("Plans: 2027", setup.doc_id)
    await page("Q1", plans)
    secret = await page("Secret", setup.doc_id, True)
    await page("Under secret", secret, False)
    await page("Home", None)  # a sibling with the same name

    asked = await api.post(
        f"/api/v1/workspaces/{setup.workspace_id}/exports/", {}, token=token(setup, "editor")
    )
    assert asked.status == 202 and asked.body["format"] == "zip", asked.body
    run = await ctx.scheduler.run_now(EXPORT_JOB)
    assert run.result["ready"] == 1, run.result
    status = await api.get(asked.body["status_url"], token=token(setup, "editor"))
    got = await api.client.fetch(
        status.body["download_url"],
        headers={"Authorization": f"Bearer {token(setup, 'editor')}"},
    )
    assert got.headers["Content-Type"] == "application/zip"
    archive = zipfile.ZipFile(io.BytesIO(got.body))
    names = sorted(archive.namelist())
    home_twin = next(n for n in names if n.startswith("Home-"))
    # The editor may not view "Secret"; its (not private) sub-page surfaces at the top.
    assert names == sorted(
        ["Home.md", "Home/Plans-2027.md", "Home/Plans-2027/Q1.md", "Under-secret.md", home_twin]
    )
    home = archive.read("Home.md").decode()
    assert "block number 0" in home
    assert "- [Plans: 2027](Home/Plans-2027.md)" in home and "Secret" not in home
    assert "- [Q1](Plans-2027/Q1.md)" in archive.read("Home/Plans-2027.md").decode()
    notified = await ctx.db.fetchrow(
        "SELECT workspace_id, document_id, data FROM notifications"
        " WHERE recipient_id = $1 AND kind = 'export.ready'",
        setup.users["editor"].id,
    )
    assert str(notified["workspace_id"]) == setup.workspace_id
    assert notified["document_id"] is None and notified["data"]["format"] == "zip"


async def test_bad_input_changes_nothing(api, ctx):
    setup = await document_with(ctx, "viewer", "outsider")
    before = await exports_count(ctx)
    for body in (
        {},
        {"format": "docx"},
        {"format": "mark\u0000down"},
        {"format": "x" * 10_000},
        {"format": "pdf", "seq": -1},
        {"format": "pdf", "seq": "x"},
        {"format": "pdf", "seq": 2**70},
        {"format": "pdf", "version": "nope"},
        {"format": "pdf", "seq": 0, "version": "0b7c1e0e-6c0a-4c33-9b7e-5d8e8b1f0a11"},
        {"format": "markdown", "seq": 999999},
        {"format": "markdown", "surprise": 1},
    ):
        got = await ask(api, setup, "viewer", **body)
        assert got.status == 400 and got.error_code == "validation_error", (body, got.body)
    raw = await api.post(
        f"{DOCS}{setup.doc_id}/exports/", raw=b"{not json", token=token(setup, "viewer")
    )
    assert raw.status == 400
    unknown_version = await ask(
        api, setup, "viewer", format="pdf", version="0b7c1e0e-6c0a-4c33-9b7e-5d8e8b1f0a11"
    )
    assert unknown_version.status == 404
    assert (await ask(api, setup, "outsider", format="html")).status == 404
    missing_doc = await api.post(
        f"{DOCS}0b7c1e0e-6c0a-4c33-9b7e-5d8e8b1f0a11/exports/",
        {"format": "html"},
        token=token(setup),
    )
    assert missing_doc.status in (403, 404)
    for path in ("/api/v1/exports/nope/", "/api/v1/exports/0b7c1e0e-6c0a-4c33-9b7e-5d8e8b1f0a11/"):
        assert (await api.get(path, token=token(setup))).status == 404
        assert (await api.get(f"{path}file/", token=token(setup))).status == 404
    workspace = f"/api/v1/workspaces/{setup.workspace_id}/exports/"
    assert (await api.post(workspace, {"format": "pdf"}, token=token(setup))).status == 400
    assert (await api.post(workspace, {}, token=token(setup, "outsider"))).status == 404
    assert await exports_count(ctx) == before


async def test_one_user_cannot_fill_the_queue(api, ctx):
    setup = await document_with(ctx, "viewer")
    await with_blocks(ctx, setup, SYNC_MAX_BLOCKS + 1)
    for _ in range(MAX_PENDING_PER_USER):
        assert (await ask(api, setup, "viewer", format="html")).status == 202
    refused = await ask(api, setup, "viewer", format="html")
    assert refused.status == 429 and refused.error_code == "rate_limited"
    assert refused.headers["Retry-After"]
    workspace = f"/api/v1/workspaces/{setup.workspace_id}/exports/"
    assert (await api.post(workspace, {}, token=token(setup, "viewer"))).status == 429
    assert (await ask(api, setup, "owner", format="html")).status == 202  # others still may
    run = await ctx.scheduler.run_now(EXPORT_JOB)
    assert run.result["ready"] == MAX_PENDING_PER_USER + 1, run.result
    assert (await ask(api, setup, "viewer", format="html")).status == 202


async def test_old_expired_and_failed_rows_are_forgotten(api, ctx):
    setup = await document_with(ctx)
    made = await ask(api, setup, format="markdown")
    await ctx.db.execute(
        "UPDATE exports SET status = 'expired', body = NULL,"
        " expires_at = now() - make_interval(secs => $2) WHERE id = $1",
        made.body["id"],
        FORGET_AFTER_S + 1,
    )
    run = await ctx.scheduler.run_now(EXPORT_JOB)
    assert run.result["forgotten"] >= 1
    assert (await api.get(made.body["status_url"], token=token(setup))).status == 404
