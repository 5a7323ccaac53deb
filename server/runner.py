"""Running one node: start the context, serve HTTP/WS, shut down gracefully.

Shutdown order matters: stop accepting connections, mark the node draining (readiness goes false
so the load balancer stops routing here), stop components (rooms flush and close their WebSockets
with 1001 "going away" so clients resync on another node, in-flight publishes finish), then close
the remaining HTTP connections and the backing-service clients.
"""

from __future__ import annotations

import asyncio
import signal
import socket

import structlog
import tornado.netutil
import tornado.web
from tornado.httpserver import HTTPServer

from server.app import build_context, make_app
from server.context import AppContext
from server.error_tracking import init_error_tracking
from server.gc_tuning import tune_collector
from server.settings import Settings

log = structlog.get_logger(__name__)
SHUTDOWN_GRACE_S = 10.0


class RunningNode:
    """A started node (used by `collab dev/serve` and by multi-node tests)."""

    def __init__(self, ctx: AppContext, server: HTTPServer, port: int):
        self.ctx = ctx
        self.server = server
        self.port = port

    async def stop(self) -> None:
        self.server.stop()
        self.ctx.draining = True
        await self.ctx.stop()
        try:
            await asyncio.wait_for(self.server.close_all_connections(), SHUTDOWN_GRACE_S)
        except TimeoutError:
            log.warning("shutdown.connections_left_open")


def make_http_server(app: tornado.web.Application, settings: Settings) -> HTTPServer:
    """The node's HTTP server with its limits: body size, header/idle and body timeouts (S18,
    S21). Tornado's defaults hold a half-sent request for an hour and a slow body forever."""
    return HTTPServer(
        app,
        xheaders=settings.xheaders,
        max_body_size=settings.max_body_bytes,
        idle_connection_timeout=settings.http_idle_timeout_s,
        body_timeout=settings.http_body_timeout_s,
    )


async def start_node(settings: Settings, sockets: list[socket.socket] | None = None) -> RunningNode:
    init_error_tracking(settings)
    ctx = build_context(settings)
    await ctx.start()
    server = make_http_server(make_app(ctx), settings)
    if sockets is None:
        sockets = tornado.netutil.bind_sockets(settings.port, settings.host)
    server.add_sockets(sockets)
    port = sockets[0].getsockname()[1]
    log.info("node.started", node=settings.node_id, host=settings.host, port=port)
    return RunningNode(ctx, server, port)


async def serve_until_signalled(
    settings: Settings, sockets: list[socket.socket] | None = None
) -> None:
    node = await start_node(settings, sockets)
    log.info("node.gc_tuned", collector=tune_collector(settings))
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    log.info("node.stopping", node=settings.node_id)
    await node.stop()
    log.info("node.stopped", node=settings.node_id)
