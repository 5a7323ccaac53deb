"""`collab dev` end to end: embedded stack up, /readyz ready, SIGTERM leaves no orphans, data kept.

Runs the real command in a subprocess (its own Postgres, nats-server and redis-server in a temp
data dir), the way a developer runs it.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import psutil
import pytest

from server.embedded import free_port

STARTUP_TIMEOUT_S = 90


def _request(url: str, body: dict | None = None) -> tuple[int, dict]:
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(
        url,
        data=data,
        headers={"Content-Type": "application/json"},
        method="POST" if body else "GET",
    )
    try:
        with urllib.request.urlopen(request, timeout=5) as response:
            return response.status, json.loads(response.read() or b"null")
    except urllib.error.HTTPError as err:
        return err.code, json.loads(err.read() or b"null")


def _clean_env() -> dict[str, str]:
    env = {
        k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "NATS_URL", "REDIS_URL")
    }
    env["COLLAB_LOG_FORMAT"] = "json"
    return env


def _start_dev(data_dir: Path, port: int) -> subprocess.Popen[bytes]:
    log = open(data_dir.parent / f"dev-{port}.log", "ab")  # noqa: SIM115 - owned by the process
    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "server.cli",
            "dev",
            "--port",
            str(port),
            "--data-dir",
            str(data_dir),
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
        env=_clean_env(),
    )


def _wait_ready(proc: subprocess.Popen[bytes], port: int) -> dict:
    deadline = time.monotonic() + STARTUP_TIMEOUT_S
    while time.monotonic() < deadline:
        assert proc.poll() is None, "collab dev exited during start-up"
        try:
            status, body = _request(f"http://127.0.0.1:{port}/readyz")
            if status == 200:
                return body
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            pass
        time.sleep(0.2)
    raise AssertionError("collab dev did not become ready")


def _service_processes(data_dir: Path) -> list[psutil.Process]:
    found = []
    for proc in psutil.process_iter(["cmdline"]):
        cmdline = " ".join(proc.info["cmdline"] or [])
        if str(data_dir) in cmdline:
            found.append(proc)
    return found


def _stop(proc: subprocess.Popen[bytes]) -> int:
    proc.send_signal(signal.SIGTERM)
    return proc.wait(60)


@pytest.mark.timeout(300)
def test_dev_runs_stops_cleanly_and_keeps_data(tmp_path):
    data_dir = tmp_path / "data"
    port = free_port()
    proc = _start_dev(data_dir, port)
    try:
        ready = _wait_ready(proc, port)
        assert ready["checks"] == {"postgres": True, "nats": True, "redis": True}
        assert len(_service_processes(data_dir)) >= 3
        email = "persist@example.com"
        status, _ = _request(
            f"http://127.0.0.1:{port}/api/v1/auth/register/",
            {"email": email, "password": "long enough password", "display_name": "P"},
        )
        assert status == 201
    finally:
        assert _stop(proc) == 0
    leftovers = [p for p in _service_processes(data_dir) if p.is_running()]
    assert leftovers == [], [p.cmdline() for p in leftovers]

    proc = _start_dev(data_dir, port)
    try:
        _wait_ready(proc, port)
        status, body = _request(
            f"http://127.0.0.1:{port}/api/v1/auth/login/",
            {"email": email, "password": "long enough password"},
        )
        assert status == 200, body
    finally:
        assert _stop(proc) == 0
    assert [p for p in _service_processes(data_dir) if p.is_running()] == []


@pytest.mark.timeout(300)
def test_dev_killed_with_sigkill_leaves_no_orphans(tmp_path):
    data_dir = tmp_path / "data"
    port = free_port()
    proc = _start_dev(data_dir, port)
    _wait_ready(proc, port)
    children = _service_processes(data_dir)
    proc.kill()
    proc.wait(10)
    _gone, alive = psutil.wait_procs(children, timeout=30)
    assert alive == []


def test_serve_requires_configuration():
    result = subprocess.run(
        [sys.executable, "-m", "server.cli", "serve"],
        env=_clean_env(),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 78  # ExitCode.CONFIG
    assert "DATABASE_URL" in result.stderr and "COLLAB_JWT_SECRET" in result.stderr


@pytest.mark.timeout(120)
def test_serve_runs_several_processes_and_stops_on_sigterm(stack, settings):
    port = free_port()
    env = {
        **_clean_env(),
        "DATABASE_URL": settings.database_url,
        "NATS_URL": settings.nats_url,
        "REDIS_URL": settings.redis_url,
        "COLLAB_JWT_SECRET": settings.jwt_secret,
    }
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "server.cli",
            "serve",
            "--port",
            str(port),
            "--processes",
            "2",
            "--no-migrate",
        ],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        _wait_ready(proc, port)
        nodes = set()
        deadline = time.monotonic() + 20
        while len(nodes) < 2 and time.monotonic() < deadline:
            nodes.add(_request(f"http://127.0.0.1:{port}/healthz")[1]["node"])
        assert len(nodes) == 2, nodes
        workers = psutil.Process(proc.pid).children()
        assert len(workers) == 2
    finally:
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(60) == 0
    _gone, alive = psutil.wait_procs(workers, timeout=30)
    assert alive == []
