"""Authenticating a request or a WebSocket from its access token.

A signature-valid token can still be revoked: logout denylists its `jti`, refresh-token reuse
revokes its family, a password change invalidates every token issued before it. Those marks are
durably in Postgres and copied to Redis (`services.denylist`). A check trusts the Redis copy only
while it is known to be complete; when it is not (flushed, restarted, failed over, evicted) or Redis
does not answer, the check asks Postgres, never "allow" (fail closed), and when both are down the
request gets 503.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from core.errors import Unauthorized
from models.cache import CacheUnavailable
from models.repo import users as users_repo
from services import tokens
from services.deps import Deps


@dataclass(frozen=True)
class Principal:
    """The authenticated caller."""

    user_id: str
    jti: str
    family_id: str
    expires_at: int


def bearer_token(header: str | None) -> str:
    if not header:
        raise Unauthorized("missing bearer token", code="missing_token")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise Unauthorized("Authorization header must be 'Bearer <token>'", code="invalid_token")
    return token.strip()


async def _revoked_per_database(ctx: Deps, claims: tokens.TokenClaims) -> bool:
    state = await users_repo.token_revocation_state(
        ctx.db, claims.user_id, claims.family_id, claims.jti
    )
    if state is None or not state["is_active"]:
        return True
    if state["family_revoked_at"] is not None or state["jti_revoked"]:
        return True
    return claims.issued_at < int(state["tokens_valid_after"].timestamp())


async def authenticate_token(ctx: Deps, token: str) -> Principal:
    claims = tokens.decode(ctx.settings, token, "access")
    try:
        revoked = await ctx.denylist.is_revoked(claims)
    except CacheUnavailable:
        revoked = None
    if revoked is None:
        revoked = await _revoked_per_database(ctx, claims)
    if revoked:
        raise Unauthorized("invalid or expired token", code="invalid_token")
    return Principal(claims.user_id, claims.jti, claims.family_id, claims.expires_at)


async def authenticate_bearer(ctx: Deps, header: str | None) -> Principal:
    return await authenticate_token(ctx, bearer_token(header))


def seconds_until(epoch_s: int) -> int:
    return max(1, int(epoch_s - time.time()))
