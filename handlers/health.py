"""Liveness, readiness and metrics for operators and load balancers."""

from __future__ import annotations

import asyncio

from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from handlers.base import BaseHandler
from handlers.routing import route


class HealthzHandler(BaseHandler):
    """The process is up and its IOLoop answers."""

    openapi = {"get": {"summary": "Liveness", "auth": False}}

    def get(self) -> None:
        self.send({"status": "ok", "node": self.ctx.node_id})


class ReadyzHandler(BaseHandler):
    """Can this node serve? Postgres and NATS JetStream must answer and the node not be draining.

    Redis is reported but does not gate readiness: it is a cache (DESIGN.md §1), editing and auth
    go on without it, so a Redis outage must not make the load balancer drop every node.
    """

    openapi = {
        "get": {"summary": "Readiness of Postgres, NATS JetStream (Redis reported)", "auth": False}
    }

    async def get(self) -> None:
        postgres, nats, redis = await asyncio.gather(
            self.ctx.db.ping(), self.ctx.nats.ready(), self.ctx.cache.ping()
        )
        checks = {"postgres": postgres, "nats": nats, "redis": redis}
        ready = postgres and nats and not self.ctx.draining
        status = "ready" if ready and redis else "degraded" if ready else "unavailable"
        self.send(
            {
                "status": status,
                "checks": checks,
                "draining": self.ctx.draining,
                "node": self.ctx.node_id,
            },
            200 if ready else 503,
        )


class MetricsHandler(BaseHandler):
    openapi = {"get": {"summary": "Prometheus metrics (text format)", "auth": False}}

    def get(self) -> None:
        self.set_header("Content-Type", CONTENT_TYPE_LATEST)
        self.finish(generate_latest())


ROUTES = [
    route("/healthz", HealthzHandler),
    route("/readyz", ReadyzHandler),
    route("/metrics", MetricsHandler),
]
