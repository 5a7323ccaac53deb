"""The Redis permission cache and its invalidation (call these after every permission change).

`policy.load_access` caches each decided `Access` per (user, resource) for
`settings.permission_cache_ttl_s`. Invalidation must be immediate and cheap, and finding every
cached entry of a user or a workspace would need a SCAN, so entries are *stamped* instead: each one
records the two generation tokens it was computed under, the workspace's and the (workspace, user)
pair's, and a lookup trusts an entry only while both tokens are still current. Invalidating is one
`SET` of a fresh token:

* `invalidate_user(ctx, user_id, workspace_id)`: that user's membership, role or grants in the
  workspace changed (added, removed, left, role changed, board/document grant added/changed/removed).
* `invalidate_resource(ctx, kind, resource_id, workspace_id)`: something that changes everybody's
  access to a board or document changed (private flag, soft delete/restore, a document moved to
  another board). Drops the whole workspace's cached decisions: such changes are rare.
* `invalidate_workspace(ctx, workspace_id)`: the workspace itself changed (deleted, restored).

Each also publishes a `Revocation(kind="permission")` on NATS so every node re-checks its open
WebSockets. Call them AFTER the Postgres transaction commits, never before: a reader that loads
facts between a premature bump and the commit would cache the old facts under the new token.

Why this is race-free: `lookup` reads the tokens BEFORE the facts are loaded from Postgres, so an
entry computed from pre-change facts carries a pre-change token. Tokens are random, not counters:
if Redis evicts or loses a token key, its replacement never equals a token an old entry carries.
A resource's workspace must be known before loading (to read its tokens); it is kept in an
immutable mapping key, learnt on the first lookup (that first decision is not cached).

Redis down: `lookup` returns None and the policy decides from Postgres (never "allow"). A failed
bump is retried in the background until the entry TTL has passed (by then every entry stamped before
the change has expired anyway); see docs/workspaces.md for the bounded staleness this leaves when
Redis is partitioned from one node only.
"""

from __future__ import annotations

import asyncio
import json
import secrets
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import redis.asyncio as redis_asyncio
import structlog

from bus.revocations import Revocation, publish_revocation
from models.cache import CacheUnavailable

if TYPE_CHECKING:
    from services.deps import Deps

log = structlog.get_logger(__name__)

# A token key only needs to outlive the entries stamped with it; expiry merely causes misses.
GENERATION_TTL_S = 24 * 3600
# Boards and documents never move between workspaces, so the mapping can live long.
WORKSPACE_OF_TTL_S = 24 * 3600
# Background retry of a failed bump: first retry after the Redis circuit breaker reopens.
BUMP_RETRY_FIRST_S = 2.0
BUMP_RETRY_MAX_S = 10.0
# `Revocation.user_id` meaning "every user": a resource-wide or workspace-wide change.
ANY_USER = "*"


def _token() -> str:
    return secrets.token_hex(8)


def _text(value: bytes | str) -> str:
    """The client is built with decode_responses=False, but stay correct either way."""
    return value.decode() if isinstance(value, bytes) else value


def workspace_generation_key(workspace_id: str) -> str:
    return f"perm:gen:ws:{workspace_id}"


def user_generation_key(workspace_id: str, user_id: str) -> str:
    return f"perm:gen:wsu:{workspace_id}:{user_id}"


def workspace_of_key(kind: str, resource_id: str) -> str:
    return f"perm:ws-of:{kind}:{resource_id}"


def entry_key(user_id: str, kind: str, resource_id: str) -> str:
    return f"perm:acc:{user_id}:{kind}:{resource_id}"


@dataclass(frozen=True)
class Stamp:
    """The generation tokens current when a decision's facts were about to be loaded."""

    workspace_id: str
    tokens: tuple[str, str]


@dataclass(frozen=True)
class CacheLookup:
    """`value`: the cached decision (a hit). `stamp`: what to store a fresh decision under; None
    when the resource's workspace was not known yet (store only teaches the mapping then).
    The value is JSON as stored in Redis (`policy.Access.to_cache`); the policy reads it back."""

    value: dict[str, Any] | None
    stamp: Stamp | None


async def lookup(ctx: Deps, user_id: str, kind: str, resource_id: str) -> CacheLookup | None:
    """The cached decision or the stamp to cache a new one under; None when Redis is unavailable."""
    try:
        return await _lookup(ctx, user_id, kind, resource_id)
    except CacheUnavailable:
        return None


async def _lookup(ctx: Deps, user_id: str, kind: str, resource_id: str) -> CacheLookup:
    workspace_id = resource_id if kind == "workspace" else None
    if workspace_id is None:
        raw_ws = await ctx.cache.run(lambda r: r.get(workspace_of_key(kind, resource_id)))
        if raw_ws is None:
            return CacheLookup(None, None)
        workspace_id = _text(raw_ws)
    gen_keys = [workspace_generation_key(workspace_id), user_generation_key(workspace_id, user_id)]
    keys = [*gen_keys, entry_key(user_id, kind, resource_id)]
    ws_token, user_token, raw = await ctx.cache.run(lambda r: r.mget(keys))
    if ws_token is None or user_token is None:
        tokens = await ctx.cache.run(lambda r: _ensure_tokens(r, gen_keys))
        return CacheLookup(None, Stamp(workspace_id, tokens))
    stamp = Stamp(workspace_id, (_text(ws_token), _text(user_token)))
    if raw is not None:
        entry = json.loads(raw)
        if entry["stamp"] == list(stamp.tokens) and entry["workspace_id"] == workspace_id:
            return CacheLookup(entry["access"], stamp)
    return CacheLookup(None, stamp)


async def _ensure_tokens(r: redis_asyncio.Redis, keys: list[str]) -> tuple[str, str]:
    """Create missing tokens (never replace existing ones) and return the current pair."""
    async with r.pipeline(transaction=True) as pipe:
        for key in keys:
            pipe.set(key, _token(), nx=True, ex=GENERATION_TTL_S)
        for key in keys:
            pipe.get(key)
        results = await pipe.execute()
    first, second = results[len(keys) :]
    return _text(first), _text(second)


async def store(
    ctx: Deps,
    user_id: str,
    kind: str,
    resource_id: str,
    workspace_id: str,
    stamp: Stamp | None,
    value: dict[str, Any],
) -> None:
    """Cache a decision made from facts loaded after `stamp` was read (best effort)."""

    async def op(r: redis_asyncio.Redis) -> None:
        async with r.pipeline(transaction=False) as pipe:
            if kind != "workspace":
                pipe.set(workspace_of_key(kind, resource_id), workspace_id, ex=WORKSPACE_OF_TTL_S)
            if stamp is not None and stamp.workspace_id == workspace_id:
                entry = {"stamp": list(stamp.tokens), "workspace_id": workspace_id, "access": value}
                pipe.set(
                    entry_key(user_id, kind, resource_id),
                    json.dumps(entry, separators=(",", ":")),
                    ex=ctx.settings.permission_cache_ttl_s,
                )
            await pipe.execute()

    try:
        await ctx.cache.run(op)
    except CacheUnavailable:
        return


# --- invalidation (public: the boards and documents services call these) -----------------------


async def invalidate_user(
    ctx: Deps,
    user_id: str,
    workspace_id: str,
    *,
    resource_type: str | None = None,
    resource_id: str | None = None,
) -> None:
    """After committing a change to `user_id`'s membership, role or grants in `workspace_id`.

    Pass `resource_type`/`resource_id` for a grant change on one board or document so open
    WebSockets on other resources are not re-checked needlessly. Never raises.
    """
    await _bump(ctx, [user_generation_key(workspace_id, user_id)])
    await publish_revocation(
        ctx.nats,
        Revocation(
            kind="permission",
            user_id=user_id,
            workspace_id=workspace_id,
            resource_type=resource_type,
            resource_id=resource_id,
        ),
    )


async def invalidate_resource(ctx: Deps, kind: str, resource_id: str, workspace_id: str) -> None:
    """After committing a change that affects everybody's access to one board or document.

    Private flag changed, soft-deleted or restored, a document moved to another board. Never raises.
    """
    await _bump(ctx, [workspace_generation_key(workspace_id)])
    await publish_revocation(
        ctx.nats,
        Revocation(
            kind="permission",
            user_id=ANY_USER,
            workspace_id=workspace_id,
            resource_type=kind,
            resource_id=resource_id,
        ),
    )


async def invalidate_workspace(ctx: Deps, workspace_id: str) -> None:
    """After committing a change to the workspace itself (deleted, restored). Never raises."""
    await _bump(ctx, [workspace_generation_key(workspace_id)])
    await publish_revocation(
        ctx.nats, Revocation(kind="permission", user_id=ANY_USER, workspace_id=workspace_id)
    )


async def _set_fresh_tokens(r: redis_asyncio.Redis, keys: list[str]) -> None:
    async with r.pipeline(transaction=False) as pipe:
        for key in keys:
            pipe.set(key, _token(), ex=GENERATION_TTL_S)
        await pipe.execute()


async def _bump(ctx: Deps, keys: list[str]) -> None:
    try:
        await ctx.cache.run(lambda r: _set_fresh_tokens(r, keys))
    except CacheUnavailable as err:
        log.warning("permission_cache.bump_failed", keys=keys, error=repr(err))
        deadline = time.monotonic() + ctx.settings.permission_cache_ttl_s
        ctx.spawn(_retry_bump(ctx, keys, deadline), name="permission-cache-bump-retry")


async def _retry_bump(ctx: Deps, keys: list[str], deadline: float) -> None:
    """Keep trying while entries stamped before the change may still be alive in Redis."""
    delay = BUMP_RETRY_FIRST_S
    while time.monotonic() < deadline:
        await asyncio.sleep(delay)
        try:
            await ctx.cache.run(lambda r: _set_fresh_tokens(r, keys))
        except CacheUnavailable:
            delay = min(delay * 2, BUMP_RETRY_MAX_S)
            continue
        log.info("permission_cache.bump_recovered", keys=keys)
        return
    log.warning("permission_cache.bump_abandoned_after_ttl", keys=keys)
