"""Users and the token bookkeeping behind refresh rotation and revocation."""

from __future__ import annotations

import peewee

from models.base import BaseModel, timestamptz


class User(BaseModel):
    # Unique on lower(email) (see migration 0001): emails are compared case-insensitively.
    email = peewee.TextField()
    password_hash = peewee.TextField()
    display_name = peewee.TextField()
    is_active = peewee.BooleanField(default=True, constraints=[peewee.SQL("DEFAULT true")])
    # An instance admin (migration 0011): may use `collab users` actions and the admin API.
    is_admin = peewee.BooleanField(default=False, constraints=[peewee.SQL("DEFAULT false")])
    # Set when the owner followed a verification (or password reset) link sent to `email`
    # (migration 0015); NULL: not verified.
    email_verified_at = timestamptz(null=True)
    # Access tokens issued before this instant are rejected (password change, "log out everywhere").
    tokens_valid_after = timestamptz(default_now=True)
    updated_at = timestamptz(default_now=True)
    # The owner deleted the account (migration 0020): email, name and password are gone (the row
    # stays so what they wrote keeps its author id), it cannot log in, its email is free again.
    deleted_at = timestamptz(null=True)

    class Meta:
        table_name = "users"


class TokenFamily(BaseModel):
    """One login session: every refresh token rotated from one login shares the family."""

    user = peewee.ForeignKeyField(User, on_delete="CASCADE", index=True)
    revoked_at = timestamptz(null=True)
    revoked_reason = peewee.TextField(null=True)
    # The User-Agent of the login (migration 0020), shown in the owner's session list.
    user_agent = peewee.TextField(null=True)

    class Meta:
        table_name = "token_families"


class RefreshToken(BaseModel):
    """A refresh token by its `jti`; `used_at` set means rotated (a second use is a theft signal)."""

    family = peewee.ForeignKeyField(TokenFamily, on_delete="CASCADE", index=True)
    user = peewee.ForeignKeyField(User, on_delete="CASCADE", index=True)
    expires_at = timestamptz()
    used_at = timestamptz(null=True)

    class Meta:
        table_name = "refresh_tokens"


class RevokedAccessToken(BaseModel):
    """Durable copy of the Redis `jti` denylist, read when Redis is down (fail closed)."""

    expires_at = timestamptz()

    class Meta:
        table_name = "revoked_access_tokens"


USER_TABLES = [User, TokenFamily, RefreshToken, RevokedAccessToken]
