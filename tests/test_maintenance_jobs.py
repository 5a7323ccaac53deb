"""The seed's maintenance jobs, each run through the node's scheduler against the real services:
its effect, its history row (`job_runs`), its metrics, and a second run that changes nothing."""

from __future__ import annotations

import dataclasses
import json
import time
import uuid
from pathlib import Path

from prometheus_client import REGISTRY

from models.repo import job_runs
from server.app import job_table
from services import snapshot_job
from services.search_catchup import INDEX_JOB
from services.session_cleanup import CLEANUP_SESSIONS_JOB
from services.version_retention import CLEANUP_VERSIONS_JOB
from tests.documents_support import Writer, make_doc_row

REFRESH = "/api/v1/auth/token/refresh/"


def runs_metric(job: str, outcome: str) -> float:
    return REGISTRY.get_sample_value("collab_job_runs_total", {"job": job, "outcome": outcome}) or 0


def items_metric(job: str, item: str) -> float:
    labels = {"job": job, "item": item}
    return REGISTRY.get_sample_value("collab_job_items_processed_total", labels) or 0


async def latest_run(ctx, job: str) -> dict:
    (row,) = await job_runs.recent_runs(ctx.db, job, 1)
    assert row["outcome"] == "ok" and row["error"] is None
    assert row["node_id"] == ctx.settings.node_id and row["started_at"] <= row["finished_at"]
    return row


# --- cleanup_expired_sessions ----------------------------------------------------------------


async def test_cleanup_expired_sessions(api, ctx, make_user):
    live, stale = await make_user("live"), await make_user("stale")
    # The stale user's session ended long ago: its refresh tokens expired a day back.
    await ctx.db.execute(
        "UPDATE refresh_tokens SET expires_at = now() - interval '1 day' WHERE user_id = $1",
        stale.id,
    )
    await ctx.db.execute(
        "UPDATE token_families SET created_at = now() - interval '15 days' WHERE user_id = $1",
        stale.id,
    )
    # A revocation of a still-young session must survive: it still rejects its access tokens.
    young = await make_user("young")
    await ctx.db.execute(
        "UPDATE token_families SET revoked_at = now() WHERE user_id = $1", young.id
    )
    gone, kept = str(uuid.uuid4()), str(uuid.uuid4())
    await ctx.db.execute(
        "INSERT INTO revoked_access_tokens (id, expires_at) VALUES"
        " ($1, now() - interval '1 minute'), ($2, now() + interval '5 minutes')",
        gone,
        kept,
    )
    await ctx.db.execute(
        "INSERT INTO account_tokens (user_id, purpose, token_hash, email, expires_at) VALUES"
        " ($1, 'password_reset', $2, $3, now() - interval '1 hour'),"
        " ($1, 'email_verification', $4, $3, now() + interval '1 hour')",
        live.id,
        uuid.uuid4().hex,
        live.email,
        uuid.uuid4().hex,
    )
    now = time.time()
    await ctx.cache.run(
        lambda r: r.hset(
            "presence:doc:cleanup-test",
            mapping={
                "dead-node-conn": json.dumps({"user_id": "u", "expires_at": now - 5}),
                "live-conn": json.dumps({"user_id": "u", "expires_at": now + 60}),
            },
        )
    )
    ok_before = runs_metric(CLEANUP_SESSIONS_JOB, "ok")

    run = await ctx.scheduler.run_now(CLEANUP_SESSIONS_JOB)

    assert run.ran
    families = "SELECT count(*) FROM token_families WHERE user_id = $1"
    assert await ctx.db.fetchval(families, stale.id) == 0
    assert await ctx.db.fetchval(families, young.id) == 1
    assert await ctx.db.fetchval(families, live.id) == 1
    assert (
        await ctx.db.fetchval("SELECT count(*) FROM refresh_tokens WHERE user_id = $1", stale.id)
        == 0
    )
    denied = await ctx.db.fetch(
        "SELECT id FROM revoked_access_tokens WHERE id = ANY($1::uuid[])", [gone, kept]
    )
    assert [str(r["id"]) for r in denied] == [kept]
    purposes = await ctx.db.fetch("SELECT purpose FROM account_tokens WHERE user_id = $1", live.id)
    assert [r["purpose"] for r in purposes] == ["email_verification"]
    left = await ctx.cache.run(lambda r: r.hkeys("presence:doc:cleanup-test"))
    assert left == [b"live-conn"]
    # The live session still works.
    refreshed = await api.post(REFRESH, {"refresh_token": live.refresh_token})
    assert refreshed.status == 200

    row = await latest_run(ctx, CLEANUP_SESSIONS_JOB)
    counts = row["counts"]
    assert counts["sessions"] >= 1 and counts["refresh_tokens"] >= 1
    assert counts["denylist_rows"] >= 1 and counts["presence_entries"] >= 1
    assert counts["account_tokens"] >= 1
    assert runs_metric(CLEANUP_SESSIONS_JOB, "ok") == ok_before + 1
    assert items_metric(CLEANUP_SESSIONS_JOB, "sessions") >= 1

    again = await ctx.scheduler.run_now(CLEANUP_SESSIONS_JOB)
    assert again.result["sessions"] == 0 and again.result["denylist_rows"] == 0
    assert again.result["presence_entries"] == 0


# --- cleanup_old_versions --------------------------------------------------------------------


async def add_versions(ctx, doc_id: str, kind: str, ages_h: list[int]) -> None:
    for seq, age in enumerate(ages_h, start=1):
        await ctx.db.execute(
            "INSERT INTO document_versions (document_id, seq, state, kind, name, created_at)"
            " VALUES ($1, $2, ''::bytea, $3, $4, now() - make_interval(hours => $5))",
            doc_id,
            seq,
            kind,
            None if kind == "auto" else f"{kind} {seq}",
            age,
        )


async def versions_of(ctx, doc_id: str) -> list[tuple[str, int]]:
    rows = await ctx.db.fetch(
        "SELECT kind, seq FROM document_versions WHERE document_id = $1 ORDER BY kind, seq",
        doc_id,
    )
    return [(r["kind"], r["seq"]) for r in rows]


async def test_cleanup_old_versions_applies_the_retention_settings(ctx):
    by_count, by_age = await make_doc_row(ctx), await make_doc_row(ctx)
    await add_versions(ctx, by_count, "auto", [6, 5, 4, 3, 2, 1])  # seq 6 is the newest
    await add_versions(ctx, by_count, "named", [9])
    await add_versions(ctx, by_age, "auto", [72, 50, 49])  # all older than the 48 h limit
    ctx.settings = dataclasses.replace(
        ctx.settings, auto_versions_keep=3, auto_versions_max_age_s=48 * 3600
    )

    run = await ctx.scheduler.run_now(CLEANUP_VERSIONS_JOB)

    assert run.ran
    assert await versions_of(ctx, by_count) == [("auto", 4), ("auto", 5), ("auto", 6), ("named", 1)]
    assert await versions_of(ctx, by_age) == [("auto", 3)]  # the newest one always stays
    row = await latest_run(ctx, CLEANUP_VERSIONS_JOB)
    assert row["counts"]["versions_deleted"] >= 5 and row["counts"]["documents"] >= 2

    again = await ctx.scheduler.run_now(CLEANUP_VERSIONS_JOB)
    assert again.result["versions_deleted"] == 0
    assert await versions_of(ctx, by_count) == [("auto", 4), ("auto", 5), ("auto", 6), ("named", 1)]


# --- compress_operation_logs -----------------------------------------------------------------


async def test_compress_operation_logs_snapshots_and_records(ctx):
    writer = Writer(ctx.doc_log, await make_doc_row(ctx))
    for i in range(6):
        await writer.type_text(str(i))
    ctx.settings = dataclasses.replace(
        ctx.settings, snapshot_min_updates=5, snapshot_max_docs_per_run=1000
    )

    run = await ctx.scheduler.run_now(snapshot_job.SNAPSHOT_JOB)

    assert run.ran and snapshot_job.SNAPSHOT_JOB == "compress_operation_logs"
    seq = await ctx.db.fetchval(
        "SELECT seq FROM document_snapshots WHERE document_id = $1", writer.doc_id
    )
    assert seq is not None and seq > 0
    row = await latest_run(ctx, snapshot_job.SNAPSHOT_JOB)
    assert row["counts"]["snapshotted"] >= 1 and row["counts"]["updates_compacted"] >= 6
    assert row["counts"]["failed"] == 0

    again = await ctx.scheduler.run_now(snapshot_job.SNAPSHOT_JOB)
    assert writer.doc_id not in [s.doc_id for s in again.result.snapshots]


# --- index_document_for_search ---------------------------------------------------------------


async def test_index_document_for_search_catches_up_a_missed_refresh(ctx):
    # The test node runs no projection refresher (`projection_refresh_s` 0): an editor's blocks
    # reach the log and nothing projects them, as when the live refresh missed the update.
    assert ctx.settings.projection_refresh_s == 0
    writer = Writer(ctx.doc_log, await make_doc_row(ctx))
    await writer.add_block("b1", "zanzibar quokka")
    await writer.add_block("b2", "second block")
    blocks = "SELECT block_id FROM blocks WHERE document_id = $1 ORDER BY position"
    assert await ctx.db.fetch(blocks, writer.doc_id) == []

    # Earlier tests of the session may have left stale documents too: the sweep is bounded per
    # run and resumes where it stopped, so it reaches this one within a few runs.
    reindexed = 0
    for _ in range(50):
        run = await ctx.scheduler.run_now(INDEX_JOB)
        reindexed += run.result["reindexed"]
        if await ctx.db.fetch(blocks, writer.doc_id):
            break
    assert [r["block_id"] for r in await ctx.db.fetch(blocks, writer.doc_id)] == ["b1", "b2"]
    assert reindexed >= 1
    hit = await ctx.db.fetchval(
        "SELECT block_id FROM blocks WHERE document_id = $1"
        " AND search_tsv @@ plainto_tsquery('collab_search', 'quokka')",
        writer.doc_id,
    )
    assert hit == "b1"
    row = await latest_run(ctx, INDEX_JOB)
    assert set(row["counts"]) == {"documents_checked", "reindexed", "failed"}

    # Up to date now: further runs leave it alone (its projection is at the log's last seq).
    seq = await ctx.db.fetchval(
        "SELECT seq FROM document_projections WHERE document_id = $1", writer.doc_id
    )
    assert seq == await ctx.doc_log.last_seq(writer.doc_id)


# --- the job table ---------------------------------------------------------------------------

SEED_JOBS = {
    "cleanup_expired_sessions",
    "cleanup_old_versions",
    "send_workspace_invitation_email",
    "send_pending_notifications",
    "compress_operation_logs",
    "index_document_for_search",
    "export_document",
    "generate_activity_reports",
}


def test_the_job_table_has_the_seed_names_and_the_readme_lists_it(settings):
    names = [name for name, _func, _seconds in job_table(settings)]
    assert set(names) >= SEED_JOBS and len(names) == len(set(names))
    readme = (Path(__file__).parent.parent / "README.md").read_text()
    table = readme.split("<!-- job-table:start -->")[1].split("<!-- job-table:end -->")[0]
    listed = {line.split("|")[1].strip().strip("`") for line in table.splitlines()[3:] if line}
    assert set(names) <= listed
