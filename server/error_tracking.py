"""Optional error tracking with Sentry (`COLLAB_SENTRY_DSN`; off when empty, the default).

`sentry-sdk` is an optional dependency (`pip install collab[sentry]`); a DSN without it installed
is a configuration error at start, not a silent no-op. Its Tornado integration reports unexpected
handler exceptions (expected refusals, `AppError`, are never logged as failures so never sent),
its logging integration reports ERROR log lines (background tasks, jobs).

Every event is tagged with the node id and with the `request_id` and `user_id` that the request
bound in structlog's context (handlers/base.py), read when the event is captured — so the tags
are those of the request that failed, without the handlers knowing about Sentry.

Nothing secret leaves: `send_default_pii` is off (no cookies, IPs, bodies), and `scrub` walks
the whole event before it is sent: values under credential-like keys (Authorization, Cookie,
password, token…, `Sec-WebSocket-Protocol` which may carry the JWT) are replaced, and in every
string JWTs, `token=` query values and long opaque path segments (invitation links) are redacted.
"""

from __future__ import annotations

import re
from typing import Any

import structlog

from server.settings import ConfigError, Settings

REDACTED = "[REDACTED]"
SENSITIVE_KEYS = frozenset(
    {
        "authorization",
        "cookie",
        "set-cookie",
        "sec-websocket-protocol",
        "password",
        "new_password",
        "current_password",
        "token",
        "access_token",
        "refresh_token",
        "jwt_secret",
        "secret",
    }
)
_JWT = re.compile(r"eyJ[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*")
_QUERY_TOKEN = re.compile(r"((?:access_|refresh_)?token=)[^&\s\"']+", re.IGNORECASE)
# Invitation links and reset tokens: long url-safe path segments that are not UUIDs.
_OPAQUE_SEGMENT = re.compile(r"(?<=/)(?![0-9a-f]{8}-[0-9a-f]{4}-)[A-Za-z0-9_-]{32,}(?=/|$|\?)")
CONTEXT_TAGS = ("request_id", "user_id")


def scrub_text(text: str) -> str:
    text = _JWT.sub(REDACTED, text)
    text = _QUERY_TOKEN.sub(rf"\1{REDACTED}", text)
    return _OPAQUE_SEGMENT.sub(REDACTED, text)


def scrub(value: Any) -> Any:
    """A copy of `value` with credentials redacted, at any depth."""
    if isinstance(value, dict):
        return {
            key: REDACTED if str(key).lower() in SENSITIVE_KEYS else scrub(item)
            for key, item in value.items()
        }
    if isinstance(value, list | tuple):
        # Sentry sends headers as [name, value] pairs in some integrations.
        if len(value) == 2 and isinstance(value[0], str) and value[0].lower() in SENSITIVE_KEYS:
            return [value[0], REDACTED]
        return [scrub(item) for item in value]
    if isinstance(value, str):
        return scrub_text(value)
    return value


def tag_and_scrub(node_id: str) -> Any:
    """The `before_send` hook: tags from the failing request's context, then scrubbing."""

    def before_send(event: dict[str, Any], hint: dict[str, Any]) -> dict[str, Any]:
        tags = event.setdefault("tags", {})
        tags["node"] = node_id
        bound = structlog.contextvars.get_contextvars()
        for name in CONTEXT_TAGS:
            if bound.get(name):
                tags[name] = str(bound[name])
        if bound.get("user_id"):
            event["user"] = {"id": str(bound["user_id"])}
        scrubbed: dict[str, Any] = scrub(event)
        return scrubbed

    return before_send


def require_sdk(settings: Settings) -> None:
    """`collab serve` checks this with the other settings, so a DSN without the package is a
    configuration error (exit 78) before anything starts."""
    if not settings.sentry_dsn:
        return
    try:
        import sentry_sdk  # noqa: F401
    except ImportError as err:
        raise ConfigError(
            "COLLAB_SENTRY_DSN is set but sentry-sdk is not installed (pip install collab[sentry])"
        ) from err


def init_error_tracking(settings: Settings) -> bool:
    """Start Sentry if a DSN is configured; True when it is on."""
    if not settings.sentry_dsn:
        return False
    require_sdk(settings)
    import sentry_sdk

    hook = tag_and_scrub(settings.node_id)
    sentry_sdk.init(
        dsn=settings.sentry_dsn,
        environment=settings.sentry_environment,
        # send_default_pii stays at its default (off: no cookies, IPs or bodies); passing it
        # explicitly is deprecated in sentry-sdk 2.7x.
        traces_sample_rate=0.0,
        before_send=hook,
        before_send_transaction=hook,
        before_breadcrumb=lambda crumb, hint: scrub(crumb),
    )
    return True
