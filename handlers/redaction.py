"""Tornado's own log lines without secrets (see `core.paths` for what is redacted and why)."""

from __future__ import annotations

from typing import Any

import tornado.httputil
import tornado.log
import tornado.web

from core.paths import safe_uri


class RedactedRequestLogging:
    """Mixin for request and WebSocket handlers: Tornado's lines for a failed request
    (`405 POST /path (ip)`, `Uncaught exception …`) print the full URI and the request's repr;
    these overrides print the redacted URI instead and leave everything else to Tornado.
    `server.app` sets `route_template` on every routed handler, which names the secret segments."""

    request: tornado.httputil.HTTPServerRequest

    def _request_summary(self) -> str:
        # Tornado's one formatter of "METHOD URI (ip)" for its warning and error lines.
        uri = safe_uri(self.request.uri or "", getattr(self, "route_template", None))
        return f"{self.request.method} {uri} ({self.request.remote_ip})"

    def log_exception(self, typ: Any, value: Any, tb: Any) -> None:
        if isinstance(value, tornado.web.HTTPError):
            super().log_exception(typ, value, tb)  # type: ignore[misc]
            return
        # Tornado would append `%r` of the request, whose repr holds the raw URI.
        tornado.log.app_log.error(
            "Uncaught exception %s", self._request_summary(), exc_info=(typ, value, tb)
        )
