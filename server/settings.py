"""All configuration, read once from environment variables (12-factor).

Every knob of the system lives here so an operator can find it in one place; defaults are safe for
the embedded dev stack. `collab serve` requires the service URLs and the JWT secret; `collab dev`
fills them in from the embedded stack it starts.
"""

from __future__ import annotations

import dataclasses
import os
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

# NATS' default max_payload is 1 MiB and a JetStream message also carries our headers, so a
# WebSocket frame (one Yjs update) is capped a little below it: an oversized frame is refused by
# Tornado with close 1009 before it reaches CRDT code, never by NATS after validation work.
NATS_MAX_PAYLOAD_BYTES = 1024 * 1024
DEFAULT_MAX_FRAME_BYTES = NATS_MAX_PAYLOAD_BYTES - 16 * 1024


# From the environment (dev/serve) the projection follows edits within 2 s (see Settings).
DEFAULT_PROJECTION_REFRESH_S = 2.0

MAIL_BACKENDS = ("off", "console", "smtp")
SMTP_TLS_MODES = ("none", "starttls", "tls")


class ConfigError(ValueError):
    """A required setting is missing or a value cannot be parsed."""


def _int(env: Mapping[str, str], name: str, default: int) -> int:
    raw = env.get(name)
    if raw is None or raw == "":
        return default
    try:
        return int(raw)
    except ValueError as err:
        raise ConfigError(f"{name} must be an integer, got {raw!r}") from err


def _float(env: Mapping[str, str], name: str, default: float) -> float:
    raw = env.get(name)
    if raw is None or raw == "":
        return default
    try:
        return float(raw)
    except ValueError as err:
        raise ConfigError(f"{name} must be a number, got {raw!r}") from err


def _bool(env: Mapping[str, str], name: str, default: bool) -> bool:
    raw = env.get(name)
    if raw is None or raw == "":
        return default
    if raw.lower() in ("1", "true", "yes", "on"):
        return True
    if raw.lower() in ("0", "false", "no", "off"):
        return False
    raise ConfigError(f"{name} must be a boolean, got {raw!r}")


def _list(env: Mapping[str, str], name: str, default: tuple[str, ...]) -> tuple[str, ...]:
    raw = env.get(name)
    if raw is None:
        return default
    return tuple(item.strip() for item in raw.split(",") if item.strip())


@dataclass(frozen=True)
class Settings:
    """One node's configuration. Frozen: tests derive variants with `dataclasses.replace`."""

    database_url: str = ""
    nats_url: str = ""
    redis_url: str = ""
    jwt_secret: str = ""

    host: str = "127.0.0.1"
    port: int = 8000
    processes: int = 1
    data_dir: Path = Path(".collab-data")
    node_id: str = field(default_factory=lambda: uuid.uuid4().hex[:12])
    xheaders: bool = False

    jwt_issuer: str = "collab"
    jwt_audience: str = "collab-api"
    access_token_ttl_s: int = 15 * 60
    refresh_token_ttl_s: int = 14 * 24 * 3600

    max_body_bytes: int = 1024 * 1024
    # Slow or half-open HTTP clients (S21, slowloris): Tornado's one timer covers both the wait for
    # a request's headers and a keep-alive connection sitting idle (its default is an hour); a body
    # must arrive whole within its own timeout (Tornado's default: never). Behind a proxy these
    # bound the proxy's connections too; WebSockets are past both once upgraded (pings keep them).
    http_idle_timeout_s: float = 20.0
    http_body_timeout_s: float = 60.0
    max_frame_bytes: int = DEFAULT_MAX_FRAME_BYTES
    cors_origins: tuple[str, ...] = ()
    # WebSocket Origin allowlist (CSWSH). Empty means "same host only" plus non-browser clients
    # that send no Origin header.
    ws_allowed_origins: tuple[str, ...] = ()
    websocket_ping_interval_s: float = 25.0
    # SIGTERM closes sockets (1001) spread over this window, so their clients' reconnects reach the
    # other nodes spread out instead of as one herd (live/hub.py `close_delays`).
    shutdown_close_spread_s: float = 2.0

    login_rate_per_ip: int = 20
    login_rate_per_email: int = 10
    login_rate_window_s: int = 60
    register_rate_per_ip: int = 20
    # Refresh calls per IP per login window: generous for many tabs, a wall for token guessing.
    refresh_rate_per_ip: int = 60
    # argon2 hashes (tens of ms of CPU, 64 MiB each) run on this many threads per process, so a
    # login burst or parallel password guessers cannot take every core from the IOLoop; at most
    # `password_hash_queue` more wait (beyond that: 503 + Retry-After).
    password_hash_workers: int = 1
    password_hash_queue: int = 32

    db_pool_min: int = 1
    db_pool_max: int = 10
    db_command_timeout_s: float = 5.0
    redis_timeout_s: float = 0.5
    # Redis connections per process. A burst (100 handshakes, each checking the denylist and the
    # permission cache) shares these instead of opening one connection per concurrent call; a call
    # waits for a free one within `redis_timeout_s` like any other Redis latency.
    redis_pool_max: int = 20

    # JetStream durability: file storage, `sync_interval` of the embedded nats-server
    # ("2m" = nats default: a killed process keeps acked data, an OS crash can lose up to 2 min;
    # "always" = fsync every write, survives power loss at a throughput cost).
    nats_sync_interval: str = "2m"
    stream_replicas: int = 1
    duplicate_window_s: int = 10 * 60
    docs_stream_max_bytes: int = 8 * 1024**3
    docs_stream_max_msgs_per_subject: int = 1_000_000
    events_stream_max_age_s: int = 30 * 24 * 3600

    # Workspaces: invitation links expire after a week; a deleted workspace is purged after its grace
    # period; decided permissions are cached in Redis for 5 min (invalidated at once on any change).
    invitation_ttl_s: int = 7 * 24 * 3600
    workspace_purge_grace_s: int = 30 * 24 * 3600
    permission_cache_ttl_s: int = 300

    # Real-time documents (live/room.py, live/session.py). The size budget is checked before
    # an update is applied, so pasting megabytes over and over cannot grow a document without bound.
    doc_max_bytes: int = 8 * 1024 * 1024
    # Per-connection token bucket, in units handled per second: a frame, or a run of queued binary
    # updates merged into one publish. A fast typist sends well under 50 frames/s (keystrokes plus
    # cursor awareness); a faster sender is slowed down by back-pressure (the server stops reading
    # its socket), never dropped: a dropped update would silently fork the document.
    ws_rate_per_s: float = 100.0
    ws_burst: int = 200
    # Open sockets per node (documents and boards together; live/admission.py). Per user: many
    # tabs with a document and a board each stay far below it. Per client address: an office
    # behind one NAT; behind a proxy it needs COLLAB_XHEADERS, else every client is the proxy.
    # Per document: the clients of one room on this node (fan-out cost), 1013 above it.
    ws_max_sockets_per_user: int = 50
    ws_max_sockets_per_ip: int = 200
    ws_max_clients_per_document: int = 200
    # Outbound bytes queued for one socket before it counts as a slow reader (R18) and is closed;
    # must exceed the largest legitimate message (a JSON full-state sync: 2 x doc_max_bytes in hex).
    ws_max_pending_bytes: int = 32 * 1024 * 1024
    # Inbound messages held while a room loads (S7; cf. Hocuspocus 1000 msgs / 5 MiB).
    ws_queue_max_msgs: int = 1000
    ws_queue_max_bytes: int = 8 * 1024 * 1024
    room_unload_grace_s: float = 30.0
    # y-protocols' outdatedTimeout: awareness states not renewed for this long are removed.
    awareness_timeout_s: float = 30.0
    presence_ttl_s: int = 60

    # Boards: events are kept in Postgres this long for `?since=` resume (a client further behind is
    # told to refetch), and a resume replays at most this many events (a full GET is cheaper).
    board_event_retention_s: int = 30 * 24 * 3600
    board_replay_max_events: int = 1000

    # Comments (services/comments.py): writes (threads, replies, edits, deletes, resolves,
    # reactions) one user may make per minute; a human never comes near, a script is stopped.
    comment_writes_per_min: int = 60

    # Background jobs (server/scheduler.py). Off unless built by `from_env` (dev/serve default on),
    # so tests and tools that construct Settings directly never have jobs racing them.
    scheduler_enabled: bool = False
    # APScheduler skips a run that starts later than this (event loop busy, node paused).
    scheduler_misfire_grace_s: float = 30.0
    # Snapshots (services/snapshots.py): every interval, documents with at least min_updates
    # unsnapshotted updates are compacted, at most max_docs per run (bounded work per tick).
    snapshot_interval_s: float = 30.0
    snapshot_min_updates: int = 200
    snapshot_max_docs_per_run: int = 50
    # Automatic versions: at most one per document per interval, the newest `keep` retained, and
    # with max_age_s > 0 none older than that but the newest (services/version_retention.py).
    auto_version_interval_s: float = 600.0
    auto_versions_keep: int = 50
    auto_versions_max_age_s: float = 0.0
    stream_health_interval_s: float = 60.0
    # Documents (services/doc_content.py): the Y.XmlFragment holding the block tree when the
    # document names none; `prosemirror` is what BlockNote's own Yjs utilities and y-prosemirror's
    # `prosemirrorToYDoc` use. A document may name another (Tiptap: `default`).
    content_fragment: str = "prosemirror"
    # The blocks projection follows live edits within this many seconds (one refresh per document
    # per period, services/projection_refresher.py); 0: only at snapshots and REST writes. Off in
    # a directly built Settings (tests turn it on), on from the environment.
    projection_refresh_s: float = 0.0
    # The projection's CPU work (loading the state into pycrdt, the block rows, comment anchors,
    # body mentions) runs in one worker process (services/projection_worker.py), off the event
    # loop: a 100k-update document held the loop ~11 s per refresh (bench/FINDINGS.md §6.1).
    # False: on the event loop, in-process (debugging, profiling). A worker task running longer
    # than projection_timeout_s is taken as hung: the worker is killed, the refresh fails (logged)
    # and the next one gets a new worker.
    projection_worker: bool = True
    projection_timeout_s: float = 300.0
    # Full-text search (services/search.py): the Postgres text search configuration (language) the
    # index is built with, e.g. `english`, `french`, `simple` (no stemming). A change re-indexes
    # every row once at the next startup.
    search_language: str = "english"
    # Exports (services/export_jobs.py): `POST …/exports/` of a document up to this many blocks is
    # rendered in the request (201); a larger one, and every workspace export, by the
    # `export_document` job (202), which looks for work every export_interval_s. A finished file is
    # kept export_ttl_s for download, then dropped (410).
    export_sync_max_blocks: int = 500
    export_ttl_s: float = 86400.0
    export_interval_s: float = 2.0

    # Outgoing email (services/mailer.py): a job sends what the outbox holds (invitations, reset
    # and verification links, notification mail, reports), off the request path. `mail_backend`:
    # "off" (mail waits in the outbox), "console" (logged, not sent; `collab dev` on external
    # services) or "smtp" (sent to smtp_host:smtp_port; `collab dev` points it at its own mail
    # catcher, server/embedded.py EmbeddedMailbox). `smtp_tls`: "none",
    # "starttls" or "tls" (implicit TLS, usually port 465). A failed send is retried after
    # mail_retry_base_s, doubling each time (capped at an hour), and marked failed after
    # mail_max_attempts; a permanent refusal (5xx) fails at once. Links in mail start with
    # public_base_url (the address users reach the app at).
    mail_backend: str = "off"
    mail_from: str = "Collab <collab@localhost>"
    public_base_url: str = "http://127.0.0.1:8000"
    smtp_host: str = "localhost"
    smtp_port: int = 25
    smtp_tls: str = "none"
    smtp_username: str = ""
    smtp_password: str = ""
    smtp_timeout_s: float = 10.0
    mail_interval_s: float = 5.0
    mail_max_attempts: int = 6
    mail_retry_base_s: float = 30.0
    # Password reset and email verification links (services/account_tokens.py): single use,
    # valid this long; requests for either mail are limited per account (or per address asked
    # for) and per client IP, per hour.
    password_reset_ttl_s: int = 3600
    email_verification_ttl_s: int = 3 * 24 * 3600
    account_mail_rate_per_account: int = 5
    account_mail_rate_per_ip: int = 30
    # Notification email (services/notification_mail.py): how often the job plans mail, and the
    # suppression window: at most one immediate mail per document per recipient this often.
    notification_mail_interval_s: float = 60.0
    notification_mail_suppress_s: int = 3600

    log_level: str = "INFO"
    log_format: str = "json"
    # server/event_loop.py: auto (uvloop when installed), uvloop or asyncio.
    event_loop: str = "auto"
    # server/gc_tuning.py: allocations between young garbage collections once a node serves
    # (startup's objects frozen); 0 keeps CPython's defaults.
    gc_gen0_threshold: int = 20_000
    # Error tracking (server/error_tracking.py): off unless a DSN is set; needs collab[sentry].
    sentry_dsn: str = ""
    sentry_environment: str = "production"

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Settings:
        """Build settings from the environment; unknown variables are ignored.

        Each field's variable is in `ENV_VARIABLES`; its parser follows the type of the field's
        default. Jobs default to on here (dev/serve), off in a directly built `Settings` (tests).
        """
        env = os.environ if env is None else env
        base = cls(scheduler_enabled=True, projection_refresh_s=DEFAULT_PROJECTION_REFRESH_S)
        values = {
            name: _parse(env, variable, getattr(base, name))
            for name, variable in ENV_VARIABLES.items()
        }
        values["node_id"] = values["node_id"] or base.node_id
        values["max_frame_bytes"] = min(values["max_frame_bytes"], DEFAULT_MAX_FRAME_BYTES)
        values["log_level"] = values["log_level"].upper()
        if values["mail_backend"] not in MAIL_BACKENDS:
            raise ConfigError(f"COLLAB_MAIL_BACKEND must be one of {', '.join(MAIL_BACKENDS)}")
        if values["smtp_tls"] not in SMTP_TLS_MODES:
            raise ConfigError(f"COLLAB_SMTP_TLS must be one of {', '.join(SMTP_TLS_MODES)}")
        return cls(**values)

    def with_services(self, database_url: str, nats_url: str, redis_url: str) -> Settings:
        """The same settings pointed at other backing services (used by `collab dev` and tests)."""
        return dataclasses.replace(
            self, database_url=database_url, nats_url=nats_url, redis_url=redis_url
        )

    def require_production(self) -> None:
        """`collab serve` refuses to start on a half-configured environment."""
        missing = [
            name
            for name, value in (
                ("DATABASE_URL", self.database_url),
                ("NATS_URL", self.nats_url),
                ("REDIS_URL", self.redis_url),
                ("COLLAB_JWT_SECRET", self.jwt_secret),
            )
            if not value
        ]
        if missing:
            raise ConfigError("missing required environment variables: " + ", ".join(missing))
        if len(self.jwt_secret) < 32:
            raise ConfigError("COLLAB_JWT_SECRET must be at least 32 characters")


def _parse(env: Mapping[str, str], name: str, default: Any) -> Any:
    """Parse variable `name` like its default: bool, int, float, list, path or string."""
    if isinstance(default, bool):
        return _bool(env, name, default)
    if isinstance(default, int):
        return _int(env, name, default)
    if isinstance(default, float):
        return _float(env, name, default)
    if isinstance(default, tuple):
        return _list(env, name, default)
    if isinstance(default, Path):
        return Path(env.get(name, str(default)))
    return env.get(name, default)


# Setting → environment variable (the README's Configuration table lists the same names).
ENV_VARIABLES: dict[str, str] = {
    "database_url": "DATABASE_URL",
    "nats_url": "NATS_URL",
    "redis_url": "REDIS_URL",
    "jwt_secret": "COLLAB_JWT_SECRET",
    "host": "COLLAB_HOST",
    "port": "COLLAB_PORT",
    "processes": "COLLAB_PROCESSES",
    "data_dir": "COLLAB_DATA_DIR",
    "node_id": "COLLAB_NODE_ID",
    "xheaders": "COLLAB_XHEADERS",
    "jwt_issuer": "COLLAB_JWT_ISSUER",
    "jwt_audience": "COLLAB_JWT_AUDIENCE",
    "access_token_ttl_s": "COLLAB_ACCESS_TOKEN_TTL_S",
    "refresh_token_ttl_s": "COLLAB_REFRESH_TOKEN_TTL_S",
    "max_body_bytes": "COLLAB_MAX_BODY_BYTES",
    "http_idle_timeout_s": "COLLAB_HTTP_IDLE_TIMEOUT_S",
    "http_body_timeout_s": "COLLAB_HTTP_BODY_TIMEOUT_S",
    "max_frame_bytes": "COLLAB_MAX_FRAME_BYTES",
    "cors_origins": "COLLAB_CORS_ORIGINS",
    "ws_allowed_origins": "COLLAB_WS_ALLOWED_ORIGINS",
    "websocket_ping_interval_s": "COLLAB_WS_PING_INTERVAL_S",
    "shutdown_close_spread_s": "COLLAB_SHUTDOWN_CLOSE_SPREAD_S",
    "login_rate_per_ip": "COLLAB_LOGIN_RATE_PER_IP",
    "login_rate_per_email": "COLLAB_LOGIN_RATE_PER_EMAIL",
    "login_rate_window_s": "COLLAB_LOGIN_RATE_WINDOW_S",
    "register_rate_per_ip": "COLLAB_REGISTER_RATE_PER_IP",
    "refresh_rate_per_ip": "COLLAB_REFRESH_RATE_PER_IP",
    "password_hash_workers": "COLLAB_PASSWORD_HASH_WORKERS",
    "password_hash_queue": "COLLAB_PASSWORD_HASH_QUEUE",
    "db_pool_min": "COLLAB_DB_POOL_MIN",
    "db_pool_max": "COLLAB_DB_POOL_MAX",
    "db_command_timeout_s": "COLLAB_DB_COMMAND_TIMEOUT_S",
    "redis_timeout_s": "COLLAB_REDIS_TIMEOUT_S",
    "redis_pool_max": "COLLAB_REDIS_POOL_MAX",
    "nats_sync_interval": "COLLAB_NATS_SYNC_INTERVAL",
    "stream_replicas": "COLLAB_STREAM_REPLICAS",
    "duplicate_window_s": "COLLAB_DUPLICATE_WINDOW_S",
    "docs_stream_max_bytes": "COLLAB_DOCS_STREAM_MAX_BYTES",
    "docs_stream_max_msgs_per_subject": "COLLAB_DOCS_STREAM_MAX_MSGS_PER_SUBJECT",
    "events_stream_max_age_s": "COLLAB_EVENTS_STREAM_MAX_AGE_S",
    "invitation_ttl_s": "COLLAB_INVITATION_TTL_S",
    "workspace_purge_grace_s": "COLLAB_WORKSPACE_PURGE_GRACE_S",
    "permission_cache_ttl_s": "COLLAB_PERMISSION_CACHE_TTL_S",
    "doc_max_bytes": "COLLAB_DOC_MAX_BYTES",
    "ws_rate_per_s": "COLLAB_WS_RATE_PER_S",
    "ws_burst": "COLLAB_WS_BURST",
    "ws_max_sockets_per_user": "COLLAB_WS_MAX_SOCKETS_PER_USER",
    "ws_max_sockets_per_ip": "COLLAB_WS_MAX_SOCKETS_PER_IP",
    "ws_max_clients_per_document": "COLLAB_WS_MAX_CLIENTS_PER_DOCUMENT",
    "ws_max_pending_bytes": "COLLAB_WS_MAX_PENDING_BYTES",
    "ws_queue_max_msgs": "COLLAB_WS_QUEUE_MAX_MSGS",
    "ws_queue_max_bytes": "COLLAB_WS_QUEUE_MAX_BYTES",
    "room_unload_grace_s": "COLLAB_ROOM_UNLOAD_GRACE_S",
    "awareness_timeout_s": "COLLAB_AWARENESS_TIMEOUT_S",
    "presence_ttl_s": "COLLAB_PRESENCE_TTL_S",
    "board_event_retention_s": "COLLAB_BOARD_EVENT_RETENTION_S",
    "board_replay_max_events": "COLLAB_BOARD_REPLAY_MAX_EVENTS",
    "comment_writes_per_min": "COLLAB_COMMENT_WRITES_PER_MIN",
    "scheduler_enabled": "COLLAB_SCHEDULER_ENABLED",
    "scheduler_misfire_grace_s": "COLLAB_SCHEDULER_MISFIRE_GRACE_S",
    "snapshot_interval_s": "COLLAB_SNAPSHOT_INTERVAL_S",
    "snapshot_min_updates": "COLLAB_SNAPSHOT_MIN_UPDATES",
    "snapshot_max_docs_per_run": "COLLAB_SNAPSHOT_MAX_DOCS_PER_RUN",
    "auto_version_interval_s": "COLLAB_AUTO_VERSION_INTERVAL_S",
    "auto_versions_keep": "COLLAB_AUTO_VERSIONS_KEEP",
    "auto_versions_max_age_s": "COLLAB_AUTO_VERSIONS_MAX_AGE_S",
    "stream_health_interval_s": "COLLAB_STREAM_HEALTH_INTERVAL_S",
    "content_fragment": "COLLAB_CONTENT_FRAGMENT",
    "projection_refresh_s": "COLLAB_PROJECTION_REFRESH_S",
    "projection_worker": "COLLAB_PROJECTION_WORKER",
    "projection_timeout_s": "COLLAB_PROJECTION_TIMEOUT_S",
    "search_language": "COLLAB_SEARCH_LANGUAGE",
    "export_sync_max_blocks": "COLLAB_EXPORT_SYNC_MAX_BLOCKS",
    "export_ttl_s": "COLLAB_EXPORT_TTL_S",
    "export_interval_s": "COLLAB_EXPORT_INTERVAL_S",
    "mail_backend": "COLLAB_MAIL_BACKEND",
    "mail_from": "COLLAB_MAIL_FROM",
    "public_base_url": "COLLAB_PUBLIC_BASE_URL",
    "smtp_host": "COLLAB_SMTP_HOST",
    "smtp_port": "COLLAB_SMTP_PORT",
    "smtp_tls": "COLLAB_SMTP_TLS",
    "smtp_username": "COLLAB_SMTP_USERNAME",
    "smtp_password": "COLLAB_SMTP_PASSWORD",
    "smtp_timeout_s": "COLLAB_SMTP_TIMEOUT_S",
    "mail_interval_s": "COLLAB_MAIL_INTERVAL_S",
    "mail_max_attempts": "COLLAB_MAIL_MAX_ATTEMPTS",
    "mail_retry_base_s": "COLLAB_MAIL_RETRY_BASE_S",
    "password_reset_ttl_s": "COLLAB_PASSWORD_RESET_TTL_S",
    "email_verification_ttl_s": "COLLAB_EMAIL_VERIFICATION_TTL_S",
    "account_mail_rate_per_account": "COLLAB_ACCOUNT_MAIL_RATE_PER_ACCOUNT",
    "account_mail_rate_per_ip": "COLLAB_ACCOUNT_MAIL_RATE_PER_IP",
    "notification_mail_interval_s": "COLLAB_NOTIFICATION_MAIL_INTERVAL_S",
    "notification_mail_suppress_s": "COLLAB_NOTIFICATION_MAIL_SUPPRESS_S",
    "log_level": "COLLAB_LOG_LEVEL",
    "log_format": "COLLAB_LOG_FORMAT",
    "event_loop": "COLLAB_EVENT_LOOP",
    "gc_gen0_threshold": "COLLAB_GC_GEN0_THRESHOLD",
    "sentry_dsn": "COLLAB_SENTRY_DSN",
    "sentry_environment": "COLLAB_SENTRY_ENVIRONMENT",
}
