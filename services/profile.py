"""The caller's own account (`/api/v1/auth/me/`): read it, rename, change the password.

The handler only parses the body into a `ProfileChange` and serializes what comes back; the order
of the steps (password first, so a wrong current password changes nothing) lives here.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any
from uuid import UUID

from core.entity import FromRow
from core.errors import NotFound, ValidationFailed
from models.repo import users as users_repo

if TYPE_CHECKING:
    from services.auth import AuthService, TokenPair
    from services.auth_guard import Principal
    from services.deps import Deps


@dataclass(frozen=True)
class Profile(FromRow):
    """The caller's own account as `/api/v1/auth/me/` shows it (`handlers/schemas/auth.UserSchema`)."""

    id: UUID
    email: str
    display_name: str
    # When the address was confirmed through a link sent to it; None: not (yet) verified.
    email_verified_at: datetime | None
    created_at: datetime


@dataclass(frozen=True)
class PasswordChange:
    current: str
    new: str


@dataclass(frozen=True)
class ProfileChange:
    """What a PATCH of the profile asks for: a new display name and/or a new password."""

    display_name: str | None = None
    password: PasswordChange | None = None

    @classmethod
    def of(cls, body: Mapping[str, Any]) -> ProfileChange:
        """From a validated body; at least one change, and both passwords or neither."""
        if not body:
            raise ValidationFailed("nothing to update")
        wants_password = "new_password" in body or "current_password" in body
        if wants_password and not ("new_password" in body and "current_password" in body):
            raise ValidationFailed(
                "changing the password needs current_password and new_password",
                fields={"current_password": ["required together with new_password"]},
            )
        password = (
            PasswordChange(body["current_password"], body["new_password"])
            if wants_password
            else None
        )
        name = body.get("display_name")
        return cls(None if name is None else name.strip(), password)


async def get_profile(ctx: Deps, user_id: str) -> Profile:
    user = await users_repo.get_user(ctx.db, user_id)
    if user is None:
        raise NotFound("user not found")
    return Profile.from_row(user)


async def change_profile(
    ctx: Deps, auth: AuthService, principal: Principal, change: ProfileChange, ip: str
) -> tuple[Profile, TokenPair | None]:
    """Apply `change`; a password change revokes every session and returns the caller's new one."""
    pair = None
    if change.password is not None:
        pair = await auth.change_password(
            principal, change.password.current, change.password.new, ip
        )
    if change.display_name is not None:
        row = await users_repo.update_profile(ctx.db, principal.user_id, change.display_name)
        user = Profile.from_row(row)
    else:
        user = await get_profile(ctx, principal.user_id)
    return user, pair
