"""What `collab serve` loads at start-up: every module a node imports is resident for its life
(RSS before the first client, issue 15), so libraries only some requests or jobs use are imported
where they are used. This pins the heavy ones to staying out of a fresh node's imports."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
#: Imported on first use only: exports (weasyprint, playwright), mail templates (jinja2), SMTP
#: (aiosmtplib), REST block validation (jsonschema), Markdown import (markdown_it).
LAZY = ("weasyprint", "playwright", "jinja2", "aiosmtplib", "jsonschema", "markdown_it")


def test_serve_start_up_does_not_import_what_only_some_requests_use() -> None:
    # A fresh interpreter: this test process has imported half the project already. The modules
    # are those `collab serve` runs (server/cli.py -> server/runner.py -> server/app.py).
    code = (
        "import json, sys; import server.cli, server.runner; "
        "from server.app import all_routes; all_routes(); "
        "print(json.dumps(sorted(sys.modules)))"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=REPO_ROOT, capture_output=True, text=True, check=True
    )
    loaded = {name.split(".")[0] for name in json.loads(result.stdout.splitlines()[-1])}
    assert "tornado" in loaded and "pycrdt" in loaded  # the check sees real imports
    assert sorted(loaded & set(LAZY)) == []
