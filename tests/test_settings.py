"""Settings parsing: typed values, clear errors, production requirements."""

from __future__ import annotations

import pytest

from server.settings import DEFAULT_MAX_FRAME_BYTES, ConfigError, Settings


def test_defaults_are_safe_for_dev():
    settings = Settings.from_env({})
    assert settings.host == "127.0.0.1"
    assert settings.port == 8000
    assert settings.max_frame_bytes < 1024 * 1024


def test_values_are_parsed():
    settings = Settings.from_env(
        {
            "COLLAB_PORT": "9001",
            "COLLAB_XHEADERS": "yes",
            "COLLAB_CORS_ORIGINS": "a, b,,c",
            "COLLAB_REDIS_TIMEOUT_S": "0.25",
        }
    )
    assert settings.port == 9001
    assert settings.xheaders is True
    assert settings.cors_origins == ("a", "b", "c")
    assert settings.redis_timeout_s == 0.25


@pytest.mark.parametrize(
    ("name", "value"),
    [("COLLAB_PORT", "eighty"), ("COLLAB_XHEADERS", "maybe"), ("COLLAB_REDIS_TIMEOUT_S", "x")],
)
def test_bad_values_name_the_variable(name, value):
    with pytest.raises(ConfigError, match=name):
        Settings.from_env({name: value})


def test_frame_limit_never_exceeds_nats_payload():
    settings = Settings.from_env({"COLLAB_MAX_FRAME_BYTES": str(50 * 1024 * 1024)})
    assert settings.max_frame_bytes == DEFAULT_MAX_FRAME_BYTES


def test_production_requires_services_and_a_strong_secret():
    with pytest.raises(ConfigError, match="DATABASE_URL"):
        Settings.from_env({}).require_production()
    weak = Settings.from_env(
        {
            "DATABASE_URL": "postgresql://x",
            "NATS_URL": "nats://x",
            "REDIS_URL": "redis://x",
            "COLLAB_JWT_SECRET": "short",
        }
    )
    with pytest.raises(ConfigError, match="32 characters"):
        weak.require_production()
