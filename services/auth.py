"""Registration, login, refresh-token rotation, logout and password change.

Registration also queues the first email-verification mail (an outbox row in the account's own
transaction; the mail job creates the link, `services/account_tokens.py`)."""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime

import asyncpg
import structlog

from bus.revocations import Revocation, publish_revocation
from core.errors import Conflict, Unauthorized, Unavailable
from models.cache import CacheUnavailable
from models.repo import outbox as outbox_repo
from models.repo import users as users_repo
from services import tokens
from services.auth_guard import Principal
from services.denylist import Denylist
from services.deps import Deps
from services.passwords import PasswordHashing
from services.ratelimit import RateLimiter

log = structlog.get_logger(__name__)

# Outbox kinds of the account mails (sent by `services/mailer.py`, built by
# `services/account_tokens.py`): a verification link for `user_id`; a reset link for `email`.
VERIFICATION_EMAIL_KIND = "email_verification_email"
PASSWORD_RESET_EMAIL_KIND = "password_reset_email"


@dataclass(frozen=True)
class TokenPair:
    access: tokens.IssuedToken
    refresh: tokens.IssuedToken

    def to_json(self) -> dict:
        return {
            "access_token": self.access.token,
            "refresh_token": self.refresh.token,
            "token_type": "Bearer",
            "expires_in": self.access.claims.expires_at - self.access.claims.issued_at,
            "refresh_expires_in": self.refresh.claims.expires_at - self.refresh.claims.issued_at,
        }


def _epoch_to_dt(epoch_s: int) -> datetime:
    return datetime.fromtimestamp(epoch_s, tz=UTC)


# A session keeps this much of its login's User-Agent (for the owner's session list).
USER_AGENT_MAX = 512


def normalize_email(email: str) -> str:
    return email.strip().lower()


class AuthService:
    def __init__(self, ctx: Deps) -> None:
        self.ctx = ctx
        self.limiter = RateLimiter(ctx.cache)
        self.passwords = PasswordHashing(
            ctx.settings.password_hash_workers, ctx.settings.password_hash_queue
        )

    async def register(self, email: str, password: str, display_name: str, ip: str) -> dict:
        settings = self.ctx.settings
        await self.limiter.hit(f"register:ip:{ip}", settings.register_rate_per_ip, 3600)
        password_hash = await self.passwords.hash(password)
        try:
            async with self.ctx.db.transaction() as conn:
                user = await users_repo.create_user(
                    conn, normalize_email(email), password_hash, display_name.strip()
                )
                await outbox_repo.insert(
                    conn, VERIFICATION_EMAIL_KIND, {"user_id": str(user["id"])}
                )
            return user
        except asyncpg.UniqueViolationError as err:
            raise Conflict("an account with this email already exists", code="email_taken") from err

    async def login(
        self, email: str, password: str, ip: str, user_agent: str | None = None
    ) -> TokenPair:
        await self._count_password_attempt(ip, email)
        found = await users_repo.get_password_hash(self.ctx.db, normalize_email(email))
        ok = await self.passwords.verify(found[1] if found else None, password)
        if not found or not ok:
            raise Unauthorized("invalid email or password", code="invalid_credentials")
        if self.passwords.needs_rehash(found[1]):
            new_hash = await self.passwords.hash(password)
            await users_repo.replace_password_hash(self.ctx.db, found[0], found[1], new_hash)
        family_id = await users_repo.create_family(
            self.ctx.db, found[0], user_agent[:USER_AGENT_MAX] if user_agent else None
        )
        return await self._issue_pair(found[0], family_id)

    async def _count_password_attempt(self, ip: str, email: str) -> None:
        """Every endpoint that checks a password spends the same budgets, before any hashing
        (RELIABILITY S17/S24): per IP, and per account keyed by its email, so guesses through
        login and through the password change count against one limit."""
        settings = self.ctx.settings
        window = settings.login_rate_window_s
        await self.limiter.hit(f"login:ip:{ip}", settings.login_rate_per_ip, window)
        await self.limiter.hit(
            f"login:email:{normalize_email(email)}", settings.login_rate_per_email, window
        )

    async def _issue_pair(
        self, user_id: str, family_id: str, conn: asyncpg.Connection | None = None
    ) -> TokenPair:
        access = tokens.issue(self.ctx.settings, "access", user_id, family_id)
        refresh = tokens.issue(self.ctx.settings, "refresh", user_id, family_id)
        await users_repo.store_refresh_token(
            conn or self.ctx.db,
            refresh.claims.jti,
            family_id,
            user_id,
            _epoch_to_dt(refresh.claims.expires_at),
        )
        return TokenPair(access, refresh)

    async def refresh(self, refresh_token: str, ip: str) -> TokenPair:
        """Rotate: each refresh token works once. A second use means it was stolen (or replayed),
        so the whole family is revoked and the legitimate holder must log in again."""
        settings = self.ctx.settings
        await self.limiter.hit(
            f"refresh:ip:{ip}", settings.refresh_rate_per_ip, settings.login_rate_window_s
        )
        claims = tokens.decode(self.ctx.settings, refresh_token, "refresh")
        async with self.ctx.db.transaction() as conn:
            claimed = await users_repo.claim_refresh_token(conn, claims.jti)
            if claimed is not None:
                return await self._issue_pair(claims.user_id, claims.family_id, conn)
            reused = await users_repo.refresh_token_exists(conn, claims.jti)
            if reused:
                await users_repo.revoke_family(conn, claims.family_id, "refresh_token_reuse")
        if reused:
            log.warning("auth.refresh_reuse", user_id=claims.user_id, family_id=claims.family_id)
            await self._deny_family(claims.user_id, claims.family_id)
        raise Unauthorized("invalid or expired token", code="invalid_token")

    async def logout(self, principal: Principal) -> None:
        await users_repo.revoke_family(self.ctx.db, principal.family_id, "logout")
        await users_repo.deny_access_token(
            self.ctx.db, principal.jti, _epoch_to_dt(principal.expires_at)
        )
        await self._cache_write(
            lambda d: d.deny(
                jti=(principal.jti, principal.expires_at), family_ids=[principal.family_id]
            )
        )
        await publish_revocation(
            self.ctx.nats,
            Revocation("session", principal.user_id, family_ids=[principal.family_id]),
        )

    async def change_password(
        self, principal: Principal, current: str, new: str, ip: str
    ) -> TokenPair:
        """Revokes every session of the user (RFC 9700) and returns a fresh one for the caller.

        Every access token names its family, so revoking all families rejects them all; the
        `tokens_valid_after` cutoff additionally covers tokens whose family row is gone."""
        await self.reauthenticate(principal.user_id, current, ip)
        new_hash = await self.passwords.hash(new)
        await self.replace_password(principal.user_id, new_hash, "password_change")
        family_id = await users_repo.create_family(self.ctx.db, principal.user_id)
        return await self._issue_pair(principal.user_id, family_id)

    async def reauthenticate(self, user_id: str, password: str, ip: str) -> None:
        """The signed-in caller proves it knows the password (a password change, deleting the
        account): same attempt budget as a login, 401 `invalid_credentials` when wrong."""
        login = await users_repo.get_login_by_id(self.ctx.db, user_id)
        if login is None:
            raise Unauthorized("invalid or expired token", code="invalid_token")
        email, stored = login
        await self._count_password_attempt(ip, email)
        if not await self.passwords.verify(stored, password):
            raise Unauthorized("current password is wrong", code="invalid_credentials")

    async def replace_password(
        self,
        user_id: str,
        new_hash: str,
        reason: str,
        in_transaction: Callable[[asyncpg.Connection], Awaitable[None]] | None = None,
    ) -> None:
        """Set a new password hash and revoke every session of the user: their families, the
        `tokens_valid_after` cut-off (covers tokens whose family row is gone), the Redis copy and
        the cross-node signal that closes their sockets. `in_transaction` runs in the same
        transaction (a reset spends its token there: the password and the token go together)."""
        valid_after = int(time.time())
        async with self.ctx.db.transaction() as conn:
            if in_transaction is not None:
                await in_transaction(conn)
            await users_repo.set_password(conn, user_id, new_hash, _epoch_to_dt(valid_after))
            families = await users_repo.revoke_user_families(conn, user_id, reason)
        await self._cache_write(
            lambda d: d.deny(family_ids=families, user_valid_after=(user_id, valid_after))
        )
        await publish_revocation(self.ctx.nats, Revocation("session", user_id, family_ids=families))

    async def _deny_family(self, user_id: str, family_id: str) -> None:
        await self._cache_write(lambda d: d.deny(family_ids=[family_id]))
        await publish_revocation(
            self.ctx.nats, Revocation("session", user_id, family_ids=[family_id])
        )

    async def _cache_write(self, op: Callable[[Denylist], Awaitable[None]]) -> None:
        """Revocations are durable in Postgres already; if Redis cannot take its copy we fail the
        call (503, safe to retry) rather than report success while Redis-checking nodes may still
        accept the token once Redis is back."""
        try:
            await op(self.ctx.denylist)
        except CacheUnavailable as err:
            raise Unavailable("revocation cache unavailable, retry") from err
