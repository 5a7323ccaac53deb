"""Password reset and email verification: requests, the links' mails, and confirmations.

A request never sends mail itself (nor touches SMTP): it writes an outbox row, and the mail job
(`services/mailer.py`) calls the builders below, which create the token and the message. So

* a reset request does the same work for a known and an unknown address — one rate-limit
  count per IP and per address asked for, one outbox row, the same 202 — and whether an account
  exists is decided only in the job, off the request path (no timing or response oracle);
* the raw token exists only in the message: the database keeps its SHA-256
  (`models/account_tokens.py`), the outbox only the address or the user id. A retried send makes a
  new token, which voids the one before (only the newest link works).

Confirming spends the token in the same transaction as its effect: a reset sets the new password
and revokes every session like a password change (`AuthService.replace_password`); both mark the
address verified (following a link sent to it proves the mailbox). Links are
`COLLAB_PUBLIC_BASE_URL` + the confirm endpoint with `?token=`: a GET there checks a link
without spending it (mail scanners that prefetch links cannot use it up), the POST spends it.
"""

from __future__ import annotations

import secrets
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from typing import Any
from urllib.parse import urlencode

from core.errors import Conflict, Gone, NotFound
from models.account_tokens import EMAIL_VERIFICATION, PASSWORD_RESET
from models.db import Database
from models.repo import account_tokens as tokens_repo
from models.repo import outbox as outbox_repo
from models.repo import users as users_repo
from server.settings import Settings
from services.auth import (
    PASSWORD_RESET_EMAIL_KIND,
    VERIFICATION_EMAIL_KIND,
    AuthService,
    normalize_email,
)
from services.deps import Deps
from services.mail_messages import absolute_url, compose, render
from services.workspaces import hash_token

TOKEN_BYTES = 32
RESET_CONFIRM_PATH = "/api/v1/auth/password-reset/confirm/"
VERIFY_CONFIRM_PATH = "/api/v1/auth/verify-email/confirm/"
RATE_WINDOW_S = 3600


def _link_invalid() -> Gone:
    """Unknown, spent, expired, or its account changed: one answer for all, so a token guesser
    learns nothing from the difference."""
    return Gone("this link is invalid, used or expired; ask for a new one", code="link_invalid")


# --- requests (the request path: rate limits and an outbox row, nothing else) -----------------


async def request_password_reset(ctx: Deps, auth: AuthService, email: str, ip: str) -> None:
    """Queue a reset mail for `email`; the same work and answer whether or not it has an account."""
    address = normalize_email(email)
    await _count_request(ctx, auth, ip, f"reset:{address}")
    async with ctx.db.transaction() as conn:
        await outbox_repo.insert(conn, PASSWORD_RESET_EMAIL_KIND, {"email": address})


async def request_verification(ctx: Deps, auth: AuthService, user_id: str, ip: str) -> None:
    """Queue a new verification mail for the caller's address (409 if already verified)."""
    await _count_request(ctx, auth, ip, f"verify:{user_id}")
    user = await users_repo.get_user(ctx.db, user_id)
    if user is None:
        raise NotFound("user not found")
    if user["email_verified_at"] is not None:
        raise Conflict("your email address is already verified", code="already_verified")
    async with ctx.db.transaction() as conn:
        await outbox_repo.insert(conn, VERIFICATION_EMAIL_KIND, {"user_id": user_id})


async def _count_request(ctx: Deps, auth: AuthService, ip: str, account_key: str) -> None:
    settings = ctx.settings
    await auth.limiter.hit(
        f"account_mail:ip:{ip}", settings.account_mail_rate_per_ip, RATE_WINDOW_S
    )
    await auth.limiter.hit(
        f"account_mail:{account_key}", settings.account_mail_rate_per_account, RATE_WINDOW_S
    )


# --- confirmations ----------------------------------------------------------------------------


async def check_link(ctx: Deps, auth: AuthService, purpose: str, token: str, ip: str) -> dict:
    """Whether a link still works, without spending it: `{"email", "expires_at"}` or 410."""
    await _count_confirm(ctx, auth, ip)
    found = await tokens_repo.find_usable(ctx.db, purpose, hash_token(token))
    if found is None:
        raise _link_invalid()
    return {"email": found["email"], "expires_at": found["expires_at"]}


async def confirm_password_reset(
    ctx: Deps, auth: AuthService, token: str, new_password: str, ip: str
) -> str:
    """Set the new password and sign the account out everywhere; spends the link. Returns the
    account's address."""
    await _count_confirm(ctx, auth, ip)
    token_hash = hash_token(token)
    found = await tokens_repo.find_usable(ctx.db, PASSWORD_RESET, token_hash)
    if found is None:  # checked before hashing: a bad link costs no argon2 time
        raise _link_invalid()
    new_hash = await auth.passwords.hash(new_password)

    async def spend(conn: Any) -> None:
        spent = await tokens_repo.spend(conn, PASSWORD_RESET, token_hash)
        if spent is None:  # used or voided meanwhile: nothing changes
            raise _link_invalid()
        await tokens_repo.mark_email_verified(conn, spent["user_id"], spent["email"])

    await auth.replace_password(found["user_id"], new_hash, "password_reset", in_transaction=spend)
    return str(found["email"])


async def confirm_verification(ctx: Deps, auth: AuthService, token: str, ip: str) -> dict:
    """Mark the address the link was sent to verified; returns the user."""
    await _count_confirm(ctx, auth, ip)
    async with ctx.db.transaction() as conn:
        spent = await tokens_repo.spend(conn, EMAIL_VERIFICATION, hash_token(token))
        if spent is None:
            raise _link_invalid()
        await tokens_repo.mark_email_verified(conn, spent["user_id"], spent["email"])
    user = await users_repo.get_user(ctx.db, spent["user_id"])
    assert user is not None  # spend() joined the active user row
    return user


async def _count_confirm(ctx: Deps, auth: AuthService, ip: str) -> None:
    """Links are 256-bit random, so guessing is hopeless; the limit keeps a guesser from costing
    us queries (and a reset from costing argon2 time) at line rate."""
    settings = ctx.settings
    await auth.limiter.hit(
        f"account_link:ip:{ip}", settings.login_rate_per_ip, settings.login_rate_window_s
    )


# --- the mails (called by the mail job) ---------------------------------------------------------


def _link(settings: Settings, path: str, token: str) -> str:
    return absolute_url(settings, f"{path}?{urlencode({'token': token})}")


async def _issue(db: Database, user: dict, purpose: str, ttl_s: int) -> str:
    token = secrets.token_urlsafe(TOKEN_BYTES)
    expires_at = datetime.now(UTC) + timedelta(seconds=ttl_s)
    async with db.transaction() as conn:
        await tokens_repo.issue(
            conn, str(user["id"]), purpose, hash_token(token), user["email"], expires_at
        )
    return token


async def password_reset_mail(
    db: Database, settings: Settings, payload: dict[str, Any]
) -> EmailMessage | None:
    """The reset mail for the address in `payload`; None (nothing sent) when no active account
    has it — the requester got the same 202 either way."""
    user = await users_repo.get_user_by_email(db, payload["email"])
    if user is None or not user["is_active"]:
        return None
    token = await _issue(db, user, PASSWORD_RESET, settings.password_reset_ttl_s)
    context = {
        "display_name": user["display_name"],
        "email": user["email"],
        "reset_url": _link(settings, RESET_CONFIRM_PATH, token),
        "ttl_minutes": max(1, settings.password_reset_ttl_s // 60),
    }
    return compose(settings, user["email"], render("password_reset", context))


async def verification_mail(
    db: Database, settings: Settings, payload: dict[str, Any]
) -> EmailMessage | None:
    """The verification mail for `payload["user_id"]`; None if verified already or inactive."""
    user = await users_repo.get_user(db, payload["user_id"])
    if user is None or not user["is_active"] or user["email_verified_at"] is not None:
        return None
    token = await _issue(db, user, EMAIL_VERIFICATION, settings.email_verification_ttl_s)
    context = {
        "display_name": user["display_name"],
        "email": user["email"],
        "verify_url": _link(settings, VERIFY_CONFIRM_PATH, token),
        "ttl_hours": max(1, settings.email_verification_ttl_s // 3600),
    }
    return compose(settings, user["email"], render("email_verification", context))
