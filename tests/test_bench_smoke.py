"""Smoke test of the WebSocket benchmark harness (bench/run.py + bench/ws_bench.mjs).

A couple of seconds of real Yjs clients against the reference server, and against ours when the
document engine is built: the harness must print its table and count real deliveries. Skip it with
`-m "not bench"`.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from bench.run import our_ws_endpoint_built

pytestmark = [pytest.mark.bench, pytest.mark.timeout(90)]

REPO_ROOT = Path(__file__).resolve().parent.parent
#: Wall-clock cap of one smoke run: Node start, a 0.5 s warm-up, 2 s measured, the drain.
SMOKE_RUN_TIMEOUT_S = 80


def _run_bench(servers: str, output: Path) -> subprocess.CompletedProcess[str]:
    argv = [sys.executable, "bench/run.py", "--servers", servers, "--scenarios", "2x3"]
    argv += ["--warmup", "0.5", "--duration", "2", "--drain", "3", "--quiet-wait", "0"]
    argv += ["--output", str(output)]
    return subprocess.run(
        argv, cwd=REPO_ROOT, capture_output=True, text=True, timeout=SMOKE_RUN_TIMEOUT_S
    )


def _servers() -> str:
    return "reference,ours" if our_ws_endpoint_built() else "reference"


def test_bench_prints_table_with_deliveries(tmp_path: Path) -> None:
    servers = _servers()
    output = tmp_path / "results.json"
    completed = _run_bench(servers, output)
    assert completed.returncode == 0, completed.stderr[-4000:]
    assert "| scenario | server | p50 ms |" in completed.stdout
    rows = json.loads(output.read_text())["rows"]
    assert [row["server"] for row in rows] == servers.split(",")
    for row in rows:
        # 1 writer × 2 peers × 20 edits/s × 2 s: every measured edit reaches both peers.
        assert row["deliveries"] > 0, row
        assert row["deliveries"] == row["expected_deliveries"], row
        assert row["p99_ms"] is not None and row["server_cpu_s"] >= 0, row
        assert f"| 2x3 | {row['server']} |" in completed.stdout


def test_fanout_path_bench_runs_through_the_real_classes() -> None:
    result = subprocess.run(
        [
            sys.executable,
            "bench/fanout_path.py",
            "--peers",
            "3",
            "--updates",
            "30",
            "--repeat",
            "1",
        ],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=SMOKE_RUN_TIMEOUT_S,
    )
    assert result.returncode == 0, result.stderr
    assert "us CPU per delivery" in result.stdout


def test_search_export_bench_runs_at_a_tiny_size(tmp_path: Path) -> None:
    """bench/search_export.py end to end (COPY fill, searches, freshness, exports) at a size of
    seconds; its figures are not checked, only that every part ran and reported."""
    output = tmp_path / "search_export.json"
    argv = [sys.executable, "-m", "bench.search_export", "--docs", "3", "--blocks", "4"]
    argv += ["--queries", "3", "--export-blocks", "5", "--edits", "1", "--refresh-s", "0.3"]
    result = subprocess.run(
        [*argv, "--output", str(output)],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=SMOKE_RUN_TIMEOUT_S,
    )
    assert result.returncode == 0, result.stderr[-4000:]
    figures = json.loads(output.read_text())
    assert figures["blocks"] == 12 and figures["search"]["queries"] == 3
    assert figures["freshness"]["edits"] == 1 and figures["export"]["pdf_bytes"] > 0
