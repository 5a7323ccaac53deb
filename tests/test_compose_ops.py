"""docker-compose.yml carries the production checklist (issue 13 item 10): backups and restore
as one-shot services on the app image, Redis persistence, and only real settings in the app
environment. Compose itself cannot run here (no Docker engine); this reads what it would run."""

from __future__ import annotations

from pathlib import Path

import yaml

from server.cli import build_parser
from server.settings import ENV_VARIABLES

REPO = Path(__file__).resolve().parent.parent


def compose() -> dict:
    return yaml.safe_load((REPO / "docker-compose.yml").read_text())


def test_backup_and_restore_services_run_the_ops_commands_on_a_volume():
    services = compose()["services"]
    for name in ("backup", "restore"):
        service = services[name]
        assert service["profiles"] == ["ops"]  # never started by a plain `up`
        assert f"collab {name} /backups/" in " ".join(service["command"])
        assert "backups:/backups" in service["volumes"]
        # A restore needs empty services: it must not wait for `migrate` to create tables.
        assert "migrate" not in service["depends_on"]
    assert "backups" in compose()["volumes"]
    subcommands = build_parser()._subparsers._group_actions[0].choices  # type: ignore[union-attr]
    assert {"backup", "restore", "verify", "reindex"} <= set(subcommands)


def test_app_environment_names_only_real_settings():
    env = compose()["x-app-env"]
    assert set(env) <= set(ENV_VARIABLES.values())
    for checklist_item in ("COLLAB_JWT_SECRET", "COLLAB_CORS_ORIGINS", "COLLAB_SENTRY_DSN"):
        assert checklist_item in env


def test_redis_persists_and_the_image_can_report_errors():
    redis = " ".join(compose()["services"]["redis"]["command"])
    assert "--appendonly yes" in redis and "--maxmemory-policy noeviction" in redis
    assert '".[sentry]"' in (REPO / "Dockerfile").read_text()
