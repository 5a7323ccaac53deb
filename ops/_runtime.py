"""Shared plumbing of the document ops commands: settings from the same env vars as `collab serve`,
a context with Postgres and NATS, and JSON/text output.

Ops commands connect to NATS *without* `ensure_streams`: an operator's shell may not carry every
stream-limit variable the nodes run with, and an inspection must never rewrite a stream's config.
The scheduler is never started here.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import json
import sys
import uuid
from collections.abc import AsyncIterator
from datetime import datetime
from typing import Any

from server.context import AppContext
from server.logging import configure_logging
from server.settings import Settings
from streams.connection import CONNECT_TIMEOUT_S, JS_TIMEOUT_S
from streams.doc_log import DocLog

UNUSED_REDIS_URL = "redis://127.0.0.1:1/0"


class OpsError(RuntimeError):
    """A clear message for the operator; the command exits with status 2."""


def doc_id_arg(value: str) -> str:
    """argparse type: document ids are UUIDs (anything else is a typo, not a query)."""
    try:
        return str(uuid.UUID(value))
    except ValueError as err:
        raise argparse.ArgumentTypeError(f"not a document id (UUID): {value!r}") from err


def settings_from_env(*, need_db: bool = True) -> Settings:
    settings = dataclasses.replace(Settings.from_env(), scheduler_enabled=False)
    missing = [
        name
        for name, value in (
            ("NATS_URL", settings.nats_url),
            ("DATABASE_URL", settings.database_url),
        )
        if not value and (need_db or name == "NATS_URL")
    ]
    if missing:
        raise OpsError("missing environment variables: " + ", ".join(missing))
    if not settings.redis_url:
        # The document commands never use Redis; the context just needs a well-formed URL.
        settings = dataclasses.replace(settings, redis_url=UNUSED_REDIS_URL)
    configure_logging("WARNING", "console")
    return settings


@contextlib.asynccontextmanager
async def ops_context(settings: Settings, *, need_db: bool = True) -> AsyncIterator[AppContext]:
    ctx = AppContext(settings)
    ctx.services["doc_log"] = DocLog(ctx.nats, f"ops-{settings.node_id}")
    if need_db:
        await ctx.db.start()
    await ctx.nats.nc.connect(
        servers=[s.strip() for s in settings.nats_url.split(",")],
        name=f"collab-ops-{settings.node_id}",
        connect_timeout=int(CONNECT_TIMEOUT_S),
        max_reconnect_attempts=2,
    )
    ctx.nats.js = ctx.nats.nc.jetstream(timeout=JS_TIMEOUT_S)
    try:
        yield ctx
    finally:
        await ctx.nats.nc.close()
        await ctx.cache.close()
        if need_db:
            await ctx.db.stop()


def _default(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat()
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return dataclasses.asdict(value)
    return str(value)


def emit(payload: Any, *, as_json: bool, text: str | None = None) -> None:
    if as_json or text is None:
        sys.stdout.write(json.dumps(payload, default=_default, indent=2, sort_keys=True) + "\n")
    else:
        sys.stdout.write(text.rstrip("\n") + "\n")


def fail(err: Exception) -> int:
    sys.stderr.write(f"error: {err}\n")
    return 2
