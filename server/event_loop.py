"""Which asyncio event loop a node runs on (`COLLAB_EVENT_LOOP`).

Tornado runs on asyncio, so any asyncio loop serves it. uvloop (libuv, in C) runs the loop's own
work -- selecting, callbacks, timers, the socket calls of nats-py and asyncpg -- outside the
interpreter; the benchmark measured what it saves per delivery (README: Benchmarks). It is a
dependency of the default install where it builds (not on Windows); `auto` uses it when it is
importable and falls back to the standard library's loop otherwise, `asyncio` forces the latter
(to rule the loop out when chasing a problem), `uvloop` requires it.
"""

from __future__ import annotations

import asyncio
import importlib.util

from server.settings import ConfigError, Settings

CHOICES = ("auto", "uvloop", "asyncio")


def install_event_loop(settings: Settings) -> str:
    """Set the event-loop policy the next `asyncio.run` uses; returns the loop's name."""
    choice = settings.event_loop
    if choice not in CHOICES:
        raise ConfigError(f"COLLAB_EVENT_LOOP must be one of {', '.join(CHOICES)}, not {choice!r}")
    has_uvloop = importlib.util.find_spec("uvloop") is not None
    if choice == "uvloop" and not has_uvloop:
        raise ConfigError("COLLAB_EVENT_LOOP=uvloop but uvloop is not installed")
    if choice == "asyncio" or not has_uvloop:
        asyncio.set_event_loop_policy(asyncio.DefaultEventLoopPolicy())
        return "asyncio"
    import uvloop

    asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())
    return "uvloop"
