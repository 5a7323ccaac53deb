"""Ops commands find a running `collab dev` by its data dir, and a dev start is quiet.

One real `collab dev` (its own Postgres, nats-server and redis-server in a temp data dir) serves
every check here, the way a developer runs it: no URL is passed to the ops commands.
"""

from __future__ import annotations

import json
import logging
import os
import stat
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest

from ops.exit_codes import ExitCode
from server.dev_services import DevServices, services_path, write_services
from server.embedded import free_port
from server.logging import configure_logging
from tests.test_cli import _clean_env, _start_dev, _stop, _wait_ready

# Jobs tick every few seconds: wait long enough that each has run at least once.
JOB_TICKS_S = 12
CHATTY = ("Added job", "Running job", "executed successfully", "Adding job", "job.ran")


def collab(*argv: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "server.cli", *argv],
        env=env or _clean_env(),
        capture_output=True,
        text=True,
        timeout=120,
    )


@pytest.mark.timeout(300)
def test_ops_commands_find_the_running_dev_stack_and_the_log_is_quiet(service_tmp_path):
    data_dir = service_tmp_path / "data"
    port = free_port()
    proc = _start_dev(data_dir, port)
    try:
        _wait_ready(proc, port)
        path = services_path(data_dir.resolve())
        services = json.loads(path.read_text())
        assert services["pid"] == proc.pid
        assert services["http_url"] == f"http://127.0.0.1:{port}"
        assert stat.S_IMODE(path.stat().st_mode) == 0o600

        result = collab("stream-health", "--json", "--data-dir", str(data_dir))
        assert result.returncode == ExitCode.OK, result.stderr
        assert json.loads(result.stdout)["level"] == "ok"
        # COLLAB_DATA_DIR works as well as --data-dir
        env = {**_clean_env(), "COLLAB_DATA_DIR": str(data_dir)}
        result = collab("replay", "--doc", str(uuid.uuid4()), "--json", env=env)
        assert result.returncode == ExitCode.NOT_FOUND, result.stderr
        result = collab("migrate", "--json", env=env)  # `collab dev` migrated already
        assert result.returncode == ExitCode.OK, result.stderr
        assert json.loads(result.stdout) == {"applied": []}
        time.sleep(JOB_TICKS_S)
    finally:
        assert _stop(proc) == 0
    assert not path.exists()  # removed at stop: nothing points at dead ports

    log_lines = (data_dir.parent / f"dev-{port}.log").read_text().splitlines()
    assert any("scheduler.started" in line for line in log_lines)
    noisy = [line for line in log_lines if any(word in line for word in CHATTY)]
    assert noisy == []


def test_a_stale_services_file_is_a_config_error(tmp_path):
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    write_services(tmp_path, DevServices(dead.pid, "postgresql://x", "nats://x", "", "http://x"))
    result = collab("stream-health", "--data-dir", str(tmp_path))
    assert result.returncode == ExitCode.CONFIG
    assert f"pid {dead.pid}, which is not running" in result.stderr


def test_no_urls_and_no_dev_stack_is_a_config_error(tmp_path):
    result = collab("replay", "--doc", str(uuid.uuid4()), "--data-dir", str(tmp_path))
    assert result.returncode == ExitCode.CONFIG
    assert "no running `collab dev`" in result.stderr and str(Path(tmp_path)) in result.stderr


def test_usage_errors_exit_64_not_critical():
    for argv in (["replay"], ["stream-health", "--nope"], ["verify-nothing"]):
        result = collab(*argv)
        assert result.returncode == ExitCode.USAGE, (argv, result.stderr)


@pytest.mark.parametrize(("level", "shown"), [("INFO", False), ("DEBUG", True)])
def test_apscheduler_info_lines_are_debug(capsys, level, shown):
    configure_logging(level, "json")
    try:
        logging.getLogger("apscheduler.scheduler").info('Added job "x" to job store "default"')
        logging.getLogger("apscheduler.scheduler").warning("Run time of job x was missed")
        err = capsys.readouterr().err
    finally:
        configure_logging(os.environ.get("COLLAB_LOG_LEVEL", "INFO"), "json")
    assert "was missed" in err
    lines = [json.loads(line) for line in err.splitlines() if "Added job" in line]
    assert bool(lines) is shown
    assert all(line["level"] == "debug" for line in lines)
