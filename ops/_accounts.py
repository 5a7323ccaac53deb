"""The context of the account commands (`collab users`, `collab createsuperuser`): Postgres,
Redis and NATS, which is what revoking a user's sessions touches (`services.deps.RevocationDeps`).
Domain errors become the ops exit codes: unknown user 66, email taken 73, Redis down 69."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Coroutine
from typing import Any

from bus.connection import NatsConnection
from bus.outbox import OutboxRelay
from core.errors import AppError, Conflict, NotFound
from models.cache import Cache, CacheUnavailable
from models.db import Database
from ops._runtime import (
    MissingConfig,
    NotFoundError,
    OpsError,
    ServiceUnavailable,
    TargetNotEmpty,
)
from server.settings import Settings
from services.denylist import Denylist


class AccountsContext:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.db = Database.from_settings(settings)
        self.cache = Cache(
            settings.redis_url,
            timeout_s=settings.redis_timeout_s,
            pool_max=2,
            client_name=f"collab-ops:{settings.node_id}",
        )
        self.nats = NatsConnection(settings)
        self._tasks: set[asyncio.Task[Any]] = set()
        self.denylist = Denylist(self)
        # Audit events leave through the one after-commit outbox, like the node's.
        self.outbox = OutboxRelay(self.db, self.nats, self.spawn)

    def spawn(self, coro: Coroutine[Any, Any, Any], *, name: str) -> asyncio.Task[Any]:
        task = asyncio.create_task(coro, name=name)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task


@contextlib.asynccontextmanager
async def accounts_context(settings: Settings) -> AsyncIterator[AccountsContext]:
    if not settings.redis_url:
        raise MissingConfig("REDIS_URL is not set (the account commands write the denylist)")
    ctx = AccountsContext(settings)
    await ctx.db.start()
    try:
        await ctx.nats.start_for_tool(f"collab-ops-{settings.node_id}")
        yield ctx
    except NotFound as err:
        raise NotFoundError(err.message) from err
    except Conflict as err:
        raise TargetNotEmpty(err.message) from err
    except CacheUnavailable as err:
        raise ServiceUnavailable(
            f"Redis did not take the revocation ({err!r}); it is committed, run again"
        ) from err
    except AppError as err:
        raise OpsError(err.message) from err
    finally:
        for task in list(ctx._tasks):
            task.cancel()
        if ctx.nats.nc.is_connected:
            await ctx.nats.nc.close()
        await ctx.cache.close()
        await ctx.db.stop()
