"""nginx from Debian in front of test nodes, running the shipped `ops/deploy/nginx.conf` itself.

The deploy config keeps its two site-specific lines in include files next to it
(`nginx-upstreams.conf`, `nginx-listen.conf`). Here the main file is symlinked unchanged into a
temp dir and the includes are rendered for loopback: the upstream lines are the shipped ones with
only the address swapped (so `max_fails`/`fail_timeout` are what production uses), and the listen
address is a free port. nginx runs in the foreground as our child (PR_SET_PDEATHSIG).
"""

from __future__ import annotations

import re
import shutil
import signal
import tempfile
from pathlib import Path
from types import TracebackType
from typing import Self

from server.embedded import ManagedProcess, _spawn, _wait_for_port, free_port

DEPLOY = Path(__file__).resolve().parent.parent / "ops" / "deploy"
NGINX_CONF = DEPLOY / "nginx.conf"
UPSTREAMS_CONF = DEPLOY / "nginx-upstreams.conf"
UPSTREAM_SERVER = re.compile(r"^\s*server\s+(\S+)(.*)$")


def nginx_binary() -> str:
    """Debian's nginx (`apt-get install -y nginx`, done by .ci/run); failing, not skipping."""
    found = shutil.which("nginx") or next(
        (p for p in ("/usr/sbin/nginx", "/usr/local/sbin/nginx") if Path(p).exists()), None
    )
    if found is None:
        raise RuntimeError("nginx is not installed: apt-get install -y nginx (see .ci/run)")
    return found


def render_upstreams(ports: list[int]) -> str:
    """The shipped upstream block's first server line, once per loopback node port."""
    for line in UPSTREAMS_CONF.read_text().splitlines():
        match = UPSTREAM_SERVER.match(line)
        if match:
            return "".join(f"server 127.0.0.1:{port}{match.group(2)}\n" for port in ports)
    raise AssertionError(f"no `server` line in {UPSTREAMS_CONF}")


def nginx_argv(conf_dir: Path, error_log: Path | None = None) -> list[str]:
    """Foreground nginx on `conf_dir/nginx.conf`; pid, logs and temp dirs inside `conf_dir`."""
    error_log = error_log or conf_dir / "error.log"
    return [
        nginx_binary(),
        "-p",
        str(conf_dir),
        "-c",
        str(conf_dir / "nginx.conf"),
        "-g",
        f"daemon off; pid {conf_dir / 'nginx.pid'}; error_log {error_log} warn;",
    ]


class Balancer:
    """The shipped nginx config in front of `ports`; `port` is where clients connect."""

    def __init__(self, ports: list[int], log_dir: Path | None = None) -> None:
        self.ports = ports
        self.port = free_port()
        self._tmp = tempfile.TemporaryDirectory(prefix="collab-nginx-")
        self.dir = Path(self._tmp.name)
        # Kept with the test's other logs (tmp_path) when given, for a failure's post-mortem.
        self.error_log_path = (log_dir or self.dir) / "nginx-error.log"
        self.process: ManagedProcess | None = None

    @property
    def http_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def ws_url(self) -> str:
        """The y-websocket provider's serverUrl through the balancer."""
        return f"ws://127.0.0.1:{self.port}/ws/documents"

    def write_config(self) -> Path:
        (self.dir / "nginx.conf").symlink_to(NGINX_CONF)
        (self.dir / "nginx-upstreams.conf").write_text(render_upstreams(self.ports))
        (self.dir / "nginx-listen.conf").write_text(f"listen 127.0.0.1:{self.port};\n")
        return self.dir / "nginx.conf"

    def start(self) -> Self:
        self.write_config()
        log = self.dir / "nginx.out"
        # SIGTERM: fast shutdown (graceful SIGQUIT would wait for open WebSockets for an hour).
        self.process = _spawn(
            "nginx", nginx_argv(self.dir, self.error_log_path), log, signal.SIGTERM
        )
        _wait_for_port(self.port, self.process.proc, "nginx", log)
        return self

    def stop(self) -> None:
        if self.process is not None:
            self.process.stop()
        self._tmp.cleanup()

    def error_log(self) -> str:
        path = self.error_log_path
        return path.read_text() if path.exists() else ""

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()
