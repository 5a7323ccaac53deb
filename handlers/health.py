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
    """Every backing service answers: Postgres, NATS JetStream, Redis. 503 otherwise."""

    openapi = {"get": {"summary": "Readiness of Postgres, NATS JetStream and Redis", "auth": False}}

    async def get(self) -> None:
        postgres, nats, redis = await asyncio.gather(
            self.ctx.db.ping(), self.ctx.nats.ready(), self.ctx.cache.ping()
        )
        checks = {"postgres": postgres, "nats": nats, "redis": redis}
        ready = postgres and nats and redis and not self.ctx.draining
        self.send(
            {
                "status": "ready" if ready else "unavailable",
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
