"""The shipped deploy configs pass their own tools' checks, and docker-compose.yml uses them.

* `nats-server -t` on each cluster member's config (with the password variables the compose file
  passes in);
* `nginx -t` on `ops/deploy/nginx.conf` exactly as compose mounts it, with the compose service
  names resolvable (a private mount namespace gives nginx an /etc/hosts that names app1/app2, as
  Docker's DNS would), and as the tests run it (tests/balancer.py);
* docker-compose.yml mounts those very files and points the app nodes at all three NATS servers.
"""

from __future__ import annotations

import subprocess
import tempfile
from pathlib import Path

import pytest
import yaml

from server.embedded import _find_binary
from tests.balancer import DEPLOY, Balancer, nginx_argv

REPO = DEPLOY.parent.parent
NATS_CONFIGS = sorted((DEPLOY / "nats").glob("nats-*.conf"))
NATS_ENV = {"COLLAB_NATS_APP_PASSWORD": "app-secret", "COLLAB_NATS_TOOLS_PASSWORD": "tools-secret"}


def compose() -> dict:
    return yaml.safe_load((REPO / "docker-compose.yml").read_text())


@pytest.mark.parametrize("conf", NATS_CONFIGS, ids=lambda p: p.name)
def test_nats_cluster_configs_pass_nats_server_t(conf: Path) -> None:
    result = subprocess.run(
        [_find_binary("nats-server"), "-t", "-c", str(conf)],
        capture_output=True,
        text=True,
        env=NATS_ENV,
        cwd=conf.parent,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    text = conf.read_text()
    assert f"server_name: {conf.stem}" in text and "routes" in text


def test_nats_config_check_fails_on_a_broken_config() -> None:
    """The check is real: a missing variable fails it (so a green run means something)."""
    result = subprocess.run(
        [_find_binary("nats-server"), "-t", "-c", str(NATS_CONFIGS[0])],
        capture_output=True,
        text=True,
        env={},
        cwd=NATS_CONFIGS[0].parent,
        check=False,
    )
    assert result.returncode != 0


def _nginx_t_as_compose_mounts(conf_dir: Path) -> subprocess.CompletedProcess[str]:
    """`nginx -t` with the compose service names resolvable, in a private mount namespace."""
    hosts = conf_dir / "hosts"
    services = " ".join(compose()["services"])
    hosts.write_text(f"127.0.0.1 localhost {services}\n")
    argv = nginx_argv(conf_dir)
    argv.insert(1, "-t")
    script = f'mount --bind "{hosts}" /etc/hosts && exec "$@"'
    return subprocess.run(
        ["unshare", "--mount", "sh", "-c", script, "nginx-t", *argv],
        capture_output=True,
        text=True,
        check=False,
    )


def _mounted_nginx_files() -> dict[str, Path]:
    """Container path → repo file, for the compose `lb` service's bind mounts."""
    mounts = {}
    for volume in compose()["services"]["lb"]["volumes"]:
        source, target, *_ = volume.split(":")
        mounts[target] = (REPO / source).resolve()
    return mounts


def test_nginx_config_as_compose_mounts_it_passes_nginx_t() -> None:
    mounts = _mounted_nginx_files()
    assert mounts["/etc/nginx/nginx.conf"] == DEPLOY / "nginx.conf"
    with tempfile.TemporaryDirectory(prefix="collab-nginx-t-") as tmp:
        conf_dir = Path(tmp)
        for target, source in mounts.items():
            assert Path(target).parent == Path("/etc/nginx"), target
            (conf_dir / Path(target).name).symlink_to(source)
        result = _nginx_t_as_compose_mounts(conf_dir)
    assert result.returncode == 0, result.stderr
    assert "test is successful" in result.stderr


def test_nginx_config_as_the_tests_run_it_passes_nginx_t() -> None:
    balancer = Balancer([8001, 8002])
    try:
        balancer.write_config()
        assert (balancer.dir / "nginx.conf").resolve() == DEPLOY / "nginx.conf"
        argv = nginx_argv(balancer.dir)
        argv.insert(1, "-t")
        result = subprocess.run(argv, capture_output=True, text=True, check=False)
    finally:
        balancer.stop()
    assert result.returncode == 0, result.stderr


def test_compose_runs_the_checked_nats_configs_and_points_apps_at_all_three() -> None:
    services = compose()["services"]
    for conf in NATS_CONFIGS:
        service = services[conf.stem]
        assert service["command"] == ["-c", f"/etc/nats/{conf.name}"]
        assert "./ops/deploy/nats:/etc/nats:ro" in service["volumes"]
    env = compose()["x-app-env"]
    assert all(f"@{conf.stem}:4222" in env["NATS_URL"] for conf in NATS_CONFIGS)
    assert env["COLLAB_STREAM_REPLICAS"] == "3"
