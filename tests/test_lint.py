"""The package type-checks (mypy, configured in setup.cfg) and lints clean (ruff, ruff.toml).

Run by the suite so a type error or a lint finding fails CI like a failing test does. mypy checks
the package folders only (its `files` setting); tests are looser on purpose.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", *args], cwd=ROOT, capture_output=True, text=True, check=False
    )


@pytest.mark.timeout(600)  # a cold mypy run takes tens of seconds on a loaded machine
def test_mypy_is_clean() -> None:
    result = run("mypy")
    assert result.returncode == 0, result.stdout + result.stderr


def test_ruff_is_clean() -> None:
    result = run("ruff", "check", ".")
    assert result.returncode == 0, result.stdout + result.stderr
