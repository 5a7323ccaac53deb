"""Structured logging (structlog), and the access log with secrets redacted.

Tokens may arrive in `?token=` (browsers cannot set WebSocket headers) or as a path segment (an
invitation link); they must never reach a log line, so the access log records the URI as
`core.paths.safe_uri` rewrites it.
"""

from __future__ import annotations

import logging
import sys
import time

import structlog
import tornado.web
from structlog.typing import Processor

from core.paths import safe_uri
from server.metrics import HTTP_LATENCY, HTTP_REQUESTS

access_log = structlog.get_logger("collab.access")


def configure_logging(level: str = "INFO", fmt: str = "json") -> None:
    renderer = (
        structlog.processors.JSONRenderer()
        if fmt == "json"
        else structlog.dev.ConsoleRenderer(colors=sys.stderr.isatty())
    )
    shared: list[Processor] = [
        structlog.contextvars.merge_contextvars,
        structlog.processors.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
    ]
    structlog.configure(
        processors=[*shared, structlog.stdlib.ProcessorFormatter.wrap_for_formatter],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        cache_logger_on_first_use=True,
    )
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(
        structlog.stdlib.ProcessorFormatter(
            processors=[structlog.stdlib.ProcessorFormatter.remove_processors_meta, renderer],
            foreign_pre_chain=[*shared, structlog.stdlib.ExtraAdder()],
        )
    )
    handler.addFilter(demote_chatty_info)
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)


# APScheduler logs every job added and every run at INFO: 240 of the first 444 lines of a dev run.
# Its warnings (missed runs, errors) stay; the routine lines move to debug.
CHATTY_LIBRARY = "apscheduler"


def demote_chatty_info(record: logging.LogRecord) -> bool:
    """Handler filter (a logger filter would miss the library's child loggers): a chatty
    library's INFO record becomes DEBUG, shown only when the root logs debug."""
    if record.levelno != logging.INFO or not record.name.startswith(CHATTY_LIBRARY):
        return True
    record.levelno, record.levelname = logging.DEBUG, "DEBUG"
    return logging.getLogger().isEnabledFor(logging.DEBUG)


def log_request(handler: tornado.web.RequestHandler) -> None:
    """Tornado `log_function`: metrics by route template and one redacted access-log line."""
    status = handler.get_status()
    duration = handler.request.request_time()
    route = getattr(handler, "route_template", None) or type(handler).__name__
    method = handler.request.method or "?"
    HTTP_REQUESTS.labels(route, method, str(status)).inc()
    HTTP_LATENCY.labels(route, method).observe(duration)
    level = logging.INFO if status < 400 else logging.WARNING if status < 500 else logging.ERROR
    access_log.log(
        level,
        "http.request",
        method=method,
        path=safe_uri(handler.request.uri or "", getattr(handler, "route_template", None)),
        status=status,
        ms=round(duration * 1000, 2),
        ip=handler.request.remote_ip,
        request_id=getattr(handler, "request_id", None),
        ts=time.time(),
    )
