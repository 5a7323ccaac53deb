"""The web app's bundle in the package is what `web/` builds (issue 14 item 2).

`pip install -e . && collab dev` must serve the app on a machine without Node, so the built bundle
is committed in `handlers/webapp_static/` (package data). This test proves it is current: it
installs web/'s pinned packages (`npm ci` from its lockfile, like the Yjs harness), type-checks and
builds the sources into a temp dir and compares every file with the committed bundle. After
changing web/, run `npm run build` there and commit handlers/webapp_static/.
"""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from pathlib import Path

from handlers.webapp import WEBAPP_DIR
from tests.yjs_client import ensure_node_modules

WEB_DIR = Path(__file__).resolve().parents[1] / "web"
#: tsc + vite on 2 busy cores: ~20 s measured; generous for a loaded CI machine.
BUILD_TIMEOUT_S = 240


def _files(root: Path) -> dict[str, bytes]:
    return {
        str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()
    }


def test_committed_bundle_is_what_web_builds() -> None:
    ensure_node_modules(WEB_DIR)
    npm = shutil.which("npm")
    assert npm, "npm is needed to build web/"
    with tempfile.TemporaryDirectory(prefix="collab-webapp-build-") as out:
        result = subprocess.run(
            [npm, "run", "build", "--", "--outDir", out, "--emptyOutDir"],
            cwd=WEB_DIR,
            capture_output=True,
            text=True,
            timeout=BUILD_TIMEOUT_S,
            check=False,
        )
        assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-4000:]
        built = _files(Path(out))
    committed = _files(WEBAPP_DIR)
    assert "index.html" in built
    assert sorted(built) == sorted(committed), (
        "handlers/webapp_static/ is stale: run `npm run build` in web/ and commit it"
    )
    stale = [name for name in built if built[name] != committed[name]]
    assert not stale, f"stale in handlers/webapp_static/: {stale} (run `npm run build` in web/)"
