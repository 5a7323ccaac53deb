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
def test_dev_runs_stops_cleanly_and_keeps_data(service_tmp_path):
    data_dir = service_tmp_path / "data"
    port = free_port()
    proc = _start_dev(data_dir, port)
    try:
        ready = _wait_ready(proc, port)
        assert ready["checks"] == {"postgres": True, "nats": True, "redis": True}
        assert len(_service_processes(data_dir)) >= 3
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=5) as page:
            assert page.headers["Content-Type"].startswith("text/html")
            assert b'<div id="root">' in page.read()  # the web app (README "Web app")
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
def test_dev_killed_with_sigkill_leaves_no_orphans(service_tmp_path):
    data_dir = service_tmp_path / "data"
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


def _dev_run(data_dir: Path, port: int) -> subprocess.CompletedProcess[str]:
    """A `collab dev` expected to refuse to start: it must exit by itself, quickly."""
    argv = [sys.executable, "-m", "server.cli", "dev", "--port", str(port)]
    argv += ["--data-dir", str(data_dir)]
    return subprocess.run(argv, env=_clean_env(), capture_output=True, text=True, timeout=60)


def _file_state(path: Path) -> tuple[int, int, bytes]:
    stat = path.stat()
    return stat.st_ino, stat.st_mtime_ns, path.read_bytes()


@pytest.mark.timeout(300)
def test_a_second_dev_is_refused_and_touches_nothing(service_tmp_path):
    """Issue 17 item 7: a second `collab dev` on a running one's data dir exits at once naming
    it (it used to delete the live postmaster.pid, and that Postgres shut down under the first
    node); one on its HTTP port gets a one-line error before starting anything."""
    data_dir = service_tmp_path / "data"
    port = free_port()
    first = _start_dev(data_dir, port)
    try:
        _wait_ready(first, port)
        pid_file = data_dir / "postgres" / "postmaster.pid"
        before = _file_state(pid_file)
        listing = sorted(p.name for p in data_dir.iterdir())
        services = {p.pid for p in _service_processes(data_dir)}

        second = _dev_run(data_dir, free_port())
        assert second.returncode == 75, second.stderr  # ExitCode.IN_USE
        assert f"collab dev pid {first.pid}" in second.stderr
        assert f"http://127.0.0.1:{port}" in second.stderr
        assert _file_state(pid_file) == before
        assert sorted(p.name for p in data_dir.iterdir()) == listing
        assert {p.pid for p in _service_processes(data_dir)} == services

        elsewhere = service_tmp_path / "elsewhere"
        third = _dev_run(elsewhere, port)
        assert third.returncode == 75, third.stderr
        lines = third.stderr.strip().splitlines()
        assert len(lines) == 1 and f"port {port}" in lines[0] and "in use" in lines[0], lines
        assert not (elsewhere / "postgres").exists()  # refused before the stack started
        assert _service_processes(elsewhere) == []

        assert _request(f"http://127.0.0.1:{port}/readyz")[0] == 200
    finally:
        assert _stop(first) == 0


@pytest.mark.timeout(300)
def test_dev_stops_loudly_when_its_postgres_dies(service_tmp_path):
    """A dead embedded service is an error in the log naming it, readiness false, and `collab
    dev` stops (exit 69) with the other services — never a node quietly answering 503s."""
    data_dir = service_tmp_path / "data"
    port = free_port()
    proc = _start_dev(data_dir, port)
    try:
        _wait_ready(proc, port)
        children = _service_processes(data_dir)
        postmaster = next(p for p in psutil.Process(proc.pid).children() if p.name() == "postgres")
        postmaster.kill()
        statuses = []
        deadline = time.monotonic() + 60
        while proc.poll() is None and time.monotonic() < deadline:
            try:
                statuses.append(_request(f"http://127.0.0.1:{port}/readyz")[0])
            except (urllib.error.URLError, ConnectionError, TimeoutError):
                statuses.append(None)  # stopped listening
            time.sleep(0.2)
        assert proc.wait(30) == 69  # ExitCode.UNAVAILABLE
        # The watch polls every 0.5 s, so a probe in the first instant after the kill may still
        # be answered 200; once the node has said it is not ready it never says ready again. (It
        # may also stop between two probes, before any of them saw it down.)
        first_down = next((i for i, s in enumerate(statuses) if s != 200), len(statuses))
        assert 200 not in statuses[first_down:], statuses
    finally:
        if proc.poll() is None:
            _stop(proc)
    log = (service_tmp_path / f"dev-{port}.log").read_text()
    died = [json.loads(line) for line in log.splitlines() if "dev.service_died" in line]
    assert died and died[0]["service"] == "postgres" and died[0]["level"] == "error", log[-2000:]
    assert "embedded postgres" in log and "exited with status" in log
    _gone, alive = psutil.wait_procs(children, timeout=30)
    assert alive == []
