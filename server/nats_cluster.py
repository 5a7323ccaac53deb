"""A local NATS JetStream cluster: N nats-servers on loopback, one cluster, R3-capable streams.

Production runs JetStream as a 3-node cluster (docker-compose.yml, `ops/deploy/nats/`); this runs the
same shape on one machine for `collab dev --cluster` and the fault tests: each member has its own
`server_name`, store dir, client/route/monitor ports (all free ports, chosen once so a restarted
member comes back where its peers and clients expect it) and routes to every member. Members are
children of ours with PR_SET_PDEATHSIG like the rest of the embedded stack.
"""

from __future__ import annotations

import contextlib
import json
import time
import urllib.error
import urllib.request
from pathlib import Path

from server.embedded import START_TIMEOUT_S, EmbeddedNats, free_port

CLUSTER_NAME = "collab-local"
# /healthz answers 200 once the member sees a JetStream meta leader and its assets are current.
HEALTH_POLL_S = 0.1
HEALTH_REQUEST_TIMEOUT_S = 1.0


class ClusterMember(EmbeddedNats):
    """One nats-server of the cluster: the single-server config plus a name and routes."""

    def __init__(
        self,
        data_dir: Path,
        name: str,
        cluster_port: int,
        route_ports: list[int],
        sync_interval: str,
    ) -> None:
        super().__init__(data_dir, sync_interval=sync_interval)
        self.name = name
        self.cluster_port = cluster_port
        self.route_ports = route_ports

    def config_lines(self) -> list[str]:
        routes = [f"    nats-route://127.0.0.1:{port}" for port in self.route_ports]
        return [
            f"server_name: {self.name}",
            *super().config_lines(),
            "cluster {",
            f"  name: {CLUSTER_NAME}",
            f"  listen: 127.0.0.1:{self.cluster_port}",
            "  routes: [",
            *routes,
            "  ]",
            "}",
        ]

    def healthy(self) -> bool:
        """JetStream on this member is up and current (nats-server's own /healthz)."""
        url = f"http://127.0.0.1:{self.monitor_port}/healthz"
        try:
            with urllib.request.urlopen(url, timeout=HEALTH_REQUEST_TIMEOUT_S) as response:
                return bool(json.load(response).get("status") == "ok")
        except (OSError, urllib.error.URLError, ValueError):
            return False


class EmbeddedNatsCluster:
    """`size` nats-servers forming one JetStream cluster; `url` lists every member for clients."""

    def __init__(self, data_dir: Path, size: int = 3, sync_interval: str = "2m") -> None:
        self.dir = data_dir.resolve()
        cluster_ports = [free_port() for _ in range(size)]
        self.members = [
            ClusterMember(
                self.dir / f"n{i + 1}",
                f"n{i + 1}",
                cluster_ports[i],
                cluster_ports,
                sync_interval,
            )
            for i in range(size)
        ]

    @property
    def url(self) -> str:
        """Comma-separated client URLs (what NATS_URL takes); nats-py fails over between them."""
        return ",".join(member.url for member in self.members)

    def member(self, name: str) -> ClusterMember:
        return next(m for m in self.members if m.name == name)

    def start(self) -> EmbeddedNatsCluster:
        try:
            for member in self.members:
                member.start()
            self.wait_healthy()
        except BaseException:
            self.stop()
            raise
        return self

    def wait_healthy(self, members: list[ClusterMember] | None = None) -> None:
        """Block until every (given) member reports JetStream healthy: a meta leader is elected
        and the member has caught up, so stream creation at R3 and publishes can succeed."""
        waiting = list(members or self.members)
        deadline = time.monotonic() + START_TIMEOUT_S
        while waiting:
            waiting = [m for m in waiting if not m.healthy()]
            if not waiting:
                return
            if time.monotonic() > deadline:
                names = ", ".join(m.name for m in waiting)
                raise RuntimeError(
                    f"nats cluster members not healthy in {START_TIMEOUT_S}s: {names}"
                )
            time.sleep(HEALTH_POLL_S)

    def stop(self) -> None:
        for member in reversed(self.members):
            with contextlib.suppress(Exception):
                member.stop()
