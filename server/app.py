"""The node factory: settings → context (clients, services, components) → Tornado application.

Route modules are listed here so a reader can follow any URL to its handler from one file.
"""

from __future__ import annotations

from typing import Any

import tornado.web

from bus.board_relay import BoardEventRelay, register_board_jobs
from bus.doc_log import DocLog
from handlers import (
    auth,
    blocks,
    boards,
    cards,
    documents,
    health,
    invitations,
    members,
    openapi,
    presence,
    workspaces,
    ws_boards,
    ws_documents,
)
from handlers.base import NotFoundHandler
from handlers.routing import Route
from live.board_feed import BoardFeed
from live.rooms import RoomManager
from server import metrics
from server.context import AppContext
from server.logging import log_request
from server.openapi import build_spec
from server.room_probe import RoomProbe
from server.scheduler import Scheduler
from server.settings import Settings
from services.auth import AuthService
from services.denylist import Denylist, register_denylist_jobs
from services.projection_refresher import ProjectionRefresher
from services.snapshot_job import register_document_jobs
from services.workspace_jobs import register_workspace_jobs

ROUTE_MODULES = [
    health,
    auth,
    openapi,
    workspaces,
    members,
    invitations,
    boards,
    cards,
    ws_boards,
    ws_documents,
    presence,
    documents,
    blocks,
]


def all_routes() -> list[Route]:
    return [r for module in ROUTE_MODULES for r in module.ROUTES]


def build_context(settings: Settings) -> AppContext:
    """Wire services and components; nothing connects until `ctx.start()`."""
    ctx = AppContext(settings)
    ctx.services["denylist"] = Denylist(ctx)
    auth = AuthService(ctx)
    ctx.services["auth"] = auth
    ctx.add_component(auth.passwords)
    ctx.services["board_relay"] = BoardEventRelay(ctx)
    ctx.add_component(ctx.services["board_relay"])
    ctx.services["board_feed"] = BoardFeed(ctx)
    ctx.add_component(ctx.services["board_feed"])
    ctx.services["openapi"] = build_spec(all_routes())
    ctx.services["doc_log"] = DocLog(ctx.nats, ctx.node_id)
    ctx.add_component(ProjectionRefresher(ctx))
    rooms = RoomManager(ctx)
    ctx.services["rooms"] = rooms
    ctx.services["presence"] = rooms.presence
    ctx.add_component(rooms)
    ctx.add_component(RoomProbe(ctx, rooms))
    metrics.watch_node(lambda: len(rooms.rooms))
    scheduler = Scheduler(ctx)
    ctx.services["scheduler"] = scheduler
    register_document_jobs(scheduler, ctx)
    register_board_jobs(scheduler, ctx)
    register_workspace_jobs(scheduler, ctx)
    register_denylist_jobs(scheduler, ctx)
    ctx.add_component(scheduler)
    return ctx


def make_app(ctx: AppContext, **overrides: Any) -> tornado.web.Application:
    routes = all_routes()
    handlers = [tornado.web.url(r.regex, _bind_template(r), {"ctx": ctx}) for r in routes]
    return tornado.web.Application(
        handlers,
        default_handler_class=NotFoundHandler,
        default_handler_args={"ctx": ctx},
        log_function=log_request,
        websocket_max_message_size=ctx.settings.max_frame_bytes,
        websocket_ping_interval=ctx.settings.websocket_ping_interval_s,
        # Tornado (6.6 here) caps the timeout at the interval and warns on every socket above it.
        websocket_ping_timeout=ctx.settings.websocket_ping_interval_s,
        compress_response=False,
        xheaders=ctx.settings.xheaders,
        **overrides,
    )


def _bind_template(route: Route) -> type[tornado.web.RequestHandler]:
    """Handlers learn their route template for metrics labels (bounded cardinality)."""
    return type(route.handler.__name__, (route.handler,), {"route_template": route.template})
