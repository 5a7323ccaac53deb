"""The node factory: settings → context (clients, services, components) → Tornado application.

Route modules are listed here so a reader can follow any URL to its handler from one file.
"""

from __future__ import annotations

import functools
from typing import Any

import tornado.web

from bus.outbox import OUTBOX_RELAY_JOB, RELAY_INTERVAL_S
from handlers import (
    activity_reports,
    admin,
    auth,
    blocks,
    boards,
    cards,
    comments,
    documents,
    export,
    health,
    imports,
    invitations,
    members,
    notifications,
    openapi,
    presence,
    search,
    unsubscribe,
    webapp,
    workspaces,
    ws_boards,
    ws_documents,
    ws_inbox,
)
from handlers.base import NotFoundHandler
from handlers.routing import Route
from server.context import AppContext
from server.logging import log_request
from server.openapi import build_spec
from server.scheduler import JobFunc
from server.settings import Settings
from services import export_jobs, mailer, notification_mail
from services.activity_reports import REPORT_EVERY_S, REPORT_JOB, generate_activity_reports
from services.board_changes import (
    BOARD_EVENTS_PRUNE_INTERVAL_S,
    BOARD_EVENTS_PRUNE_JOB,
    prune_board_events,
)
from services.search_catchup import INDEX_EVERY_S, INDEX_JOB, index_stale_documents
from services.session_cleanup import (
    CLEANUP_SESSIONS_EVERY_S,
    CLEANUP_SESSIONS_JOB,
    cleanup_expired_sessions,
)
from services.snapshot_job import (
    SNAPSHOT_JOB,
    STREAM_HEALTH_JOB,
    check_stream_health,
    snapshot_dirty,
)
from services.version_retention import (
    CLEANUP_VERSIONS_EVERY_S,
    CLEANUP_VERSIONS_JOB,
    cleanup_old_versions,
)
from services.workspace_jobs import (
    WORKSPACE_PURGE_INTERVAL_S,
    WORKSPACE_PURGE_JOB,
    purge_workspaces,
)

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
    ws_inbox,
    presence,
    documents,
    blocks,
    comments,
    export,
    imports,
    search,
    notifications,
    unsubscribe,
    admin,
    activity_reports,
]


def all_routes() -> list[Route]:
    return [r for module in ROUTE_MODULES for r in module.ROUTES]


@functools.cache
def api_document() -> dict[str, Any]:
    """The OpenAPI document of every route, built once per process: it is a pure function of the
    route table, and building it (apispec walking every schema) costs ~0.15 s of CPU — which a test
    run that starts a node per test paid two thousand times. Read-only: every node shares it."""
    return build_spec(all_routes())


def build_context(settings: Settings) -> AppContext:
    """The node (components wired in `AppContext`) and every periodic job it runs; nothing
    connects until `ctx.start()`."""
    ctx = AppContext(settings, openapi=api_document())
    for name, func, seconds in job_table(settings):
        ctx.scheduler.register(name, func, seconds)
    return ctx


def job_table(settings: Settings) -> list[tuple[str, JobFunc[AppContext], float]]:
    """Every background job of a node: name, function, period in seconds (README "Background
    jobs" shows this table). Each run takes the job's one-runner lock (`server/scheduler.py`)."""
    return [
        # The seed's jobs, under the seed's names.
        (CLEANUP_SESSIONS_JOB, cleanup_expired_sessions, CLEANUP_SESSIONS_EVERY_S),
        (CLEANUP_VERSIONS_JOB, cleanup_old_versions, CLEANUP_VERSIONS_EVERY_S),
        (
            notification_mail.NOTIFICATION_MAIL_JOB,
            send_pending_notifications,
            settings.notification_mail_interval_s,
        ),
        (REPORT_JOB, generate_activity_reports, REPORT_EVERY_S),
        (mailer.MAIL_JOB, send_pending_mail, settings.mail_interval_s),
        (export_jobs.EXPORT_JOB, export_jobs.run_exports, settings.export_interval_s),
        (SNAPSHOT_JOB, snapshot_dirty, settings.snapshot_interval_s),
        (INDEX_JOB, index_stale_documents, INDEX_EVERY_S),
        # The node's own upkeep.
        (STREAM_HEALTH_JOB, check_stream_health, settings.stream_health_interval_s),
        (OUTBOX_RELAY_JOB, relay_outbox, RELAY_INTERVAL_S),
        (BOARD_EVENTS_PRUNE_JOB, prune_board_events, BOARD_EVENTS_PRUNE_INTERVAL_S),
        (WORKSPACE_PURGE_JOB, purge_workspaces, WORKSPACE_PURGE_INTERVAL_S),
    ]


async def send_pending_mail(ctx: AppContext) -> int:
    """The mail job (`services/mailer.py`): invitations and other mail the outbox holds."""
    return await mailer.send_pending(ctx)


async def send_pending_notifications(ctx: AppContext) -> dict[str, int]:
    """Notification email (`services/notification_mail.py`): plans the immediate mails and
    digests the preferences ask for, into the outbox the mail job sends."""
    return await notification_mail.send_pending_notifications(ctx)


async def relay_outbox(ctx: AppContext) -> int:
    """The one relay job: republish the events the committing nodes did not get out."""
    return await ctx.outbox.sweep()


def make_app(ctx: AppContext, **overrides: Any) -> tornado.web.Application:
    routes = all_routes()
    handlers = [tornado.web.url(r.regex, _bind_template(r), {"ctx": ctx}) for r in routes]
    handlers += webapp.url_specs()  # the web app at `/`: not API routes (no OpenAPI, no CORS)
    return tornado.web.Application(
        handlers,
        default_handler_class=NotFoundHandler,
        default_handler_args={"ctx": ctx},
        log_function=log_request,
        websocket_max_message_size=ctx.settings.max_frame_bytes,
        # Keep-alive pings are the node's pinger (live/pinger.py, same rule as Tornado's with the
        # timeout equal to the interval), not a Tornado task per socket.
        websocket_ping_interval=0,
        compress_response=False,
        xheaders=ctx.settings.xheaders,
        **overrides,
    )


def _bind_template(route: Route) -> type[tornado.web.RequestHandler]:
    """Handlers learn their route template for metrics labels (bounded cardinality)."""
    return type(route.handler.__name__, (route.handler,), {"route_template": route.template})
