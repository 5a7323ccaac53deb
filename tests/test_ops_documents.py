"""The document ops commands through the real CLI (`collab replay|snapshot-now|stream-inspect|
stream-health`), configured by the same env vars as a node."""

from __future__ import annotations

import asyncio
import json
import os
import sys
import uuid
from pathlib import Path

from bus.doc_usage import StreamUsage, assess
from ops.exit_codes import ExitCode
from ops.stream_health import render
from server.embedded import free_port
from services.stream_health import worst
from tests.documents_support import Writer, make_doc_row, root_text

ROOT = Path(__file__).resolve().parent.parent


async def collab(settings, *argv: str, env: dict[str, str] | None = None) -> tuple[int, str, str]:
    base = {
        "PATH": os.environ.get("PATH", ""),
        "HOME": os.environ.get("HOME", "/tmp"),
        "DATABASE_URL": settings.database_url,
        "NATS_URL": settings.nats_url,
    }
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "server.cli",
        *argv,
        cwd=ROOT,
        env=base if env is None else {**base, **env},
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(proc.communicate(), 60)
    return proc.returncode, out.decode(), err.decode()


async def test_replay_snapshot_now_and_inspect_a_document(ctx, settings):
    writer = Writer(ctx.doc_log, await make_doc_row(ctx))
    await writer.add_block("b1", "from the log")
    last = await writer.type_text("hello")

    code, out, err = await collab(settings, "replay", "--doc", writer.doc_id, "--json")
    assert code == 0, err
    replayed = json.loads(out)
    assert replayed["version"] == last and replayed["replayed_updates"] == 2
    assert root_text(replayed["content"]) == "hello"

    code, out, err = await collab(settings, "snapshot-now", "--doc", writer.doc_id, "--json")
    assert code == 0, err
    (result,) = json.loads(out)["snapshots"]
    assert (result["status"], result["seq"]) == ("snapshotted", last)
    code, out, _ = await collab(settings, "snapshot-now", "--doc", writer.doc_id, "--json")
    assert json.loads(out)["snapshots"][0]["status"] == "up_to_date"

    code, out, err = await collab(settings, "stream-inspect", "--doc", writer.doc_id, "--json")
    assert code == 0, err
    info = json.loads(out)
    assert info["snapshot_seq"] == last and info["last_seq"] == last
    assert info["stored_updates"] == 2 and info["compaction"]["snapshot_seq"] == last

    code, out, _ = await collab(settings, "replay", "--doc", writer.doc_id, "--json")
    assert json.loads(out)["snapshot_seq"] == last
    assert json.loads(out)["content"] == replayed["content"]


async def test_stream_inspect_and_health(ctx, settings):
    code, out, err = await collab(settings, "stream-inspect", "--json")
    assert code == 0, err
    info = json.loads(out)
    assert info["stream"]["max_msg_size"] == settings.max_frame_bytes
    assert info["stream"]["discard"] == "new"
    assert isinstance(info["consumers"], list)
    code, out, err = await collab(settings, "stream-health", "--json")
    assert code == 0, err  # the test stream's limits are far away
    assert json.loads(out)["level"] == "ok"
    code, out, _ = await collab(settings, "stream-health")
    assert "COLLAB_DOCS" in out and "max_bytes" in out


async def test_clear_errors_for_bad_arguments_and_missing_env(settings, tmp_path):
    code, _out, err = await collab(settings, "replay", "--doc", "not-a-uuid")
    assert code == ExitCode.USAGE and "not a document id" in err
    code, _out, err = await collab(settings, "snapshot-now")
    assert code == ExitCode.USAGE  # one of --doc / --all-dirty is required
    code, out, err = await collab(
        settings,
        "snapshot-now",
        "--all-dirty",
        "--json",
        "--data-dir",
        str(tmp_path),
        env={"DATABASE_URL": "", "NATS_URL": ""},
    )
    assert code == ExitCode.CONFIG and "NATS_URL" in err and "DATABASE_URL" in err
    assert str(tmp_path) in err  # where it looked for a running `collab dev`
    assert json.loads(out)["error"]["code"] == "config"


async def test_unknown_document_is_an_error_not_an_empty_document(settings):
    unknown = str(uuid.uuid4())
    for command in ("replay", "snapshot-now", "stream-inspect"):
        code, out, err = await collab(settings, command, "--doc", unknown, "--json")
        assert code == ExitCode.NOT_FOUND, (command, out, err)
        assert json.loads(out)["error"] == {
            "code": "not_found",
            "message": f"no such document: {unknown}",
        }


async def test_services_down_is_unavailable_not_critical(settings):
    dead = f"nats://127.0.0.1:{free_port()}"
    code, _out, err = await collab(settings, "stream-health", env={"NATS_URL": dead})
    assert code == ExitCode.UNAVAILABLE, err
    assert "unavailable" in err


async def test_text_output_without_json(ctx, settings):
    writer = Writer(ctx.doc_log, await make_doc_row(ctx))
    await writer.type_text("plain")
    code, out, err = await collab(settings, "replay", "--doc", writer.doc_id)
    assert code == 0, err
    assert f"doc_id: {writer.doc_id}" in out and "version: " in out


def test_health_levels_and_rendering():
    usage = StreamUsage(
        messages=90,
        bytes=600,
        first_seq=1,
        last_seq=90,
        subjects=3,
        max_bytes=1000,
        max_msgs=-1,
        max_msgs_per_subject=100,
        max_msg_size=10,
        discard="new",
        discard_new_per_subject=True,
        largest_subject="collab.doc.x.update",
        largest_subject_msgs=85,
    )
    findings = assess(usage)
    assert {f.limit: f.level for f in findings} == {
        "max_bytes": "warning",
        "max_msgs_per_subject": "critical",
    }
    assert worst(findings) == "critical"
    text = render(usage, findings)
    assert "CRITICAL max_msgs_per_subject: 85 of 100 (85.0%)" in text
