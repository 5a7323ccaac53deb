"""`/api/v1/auth/`: register, login, token refresh, logout, me."""

from __future__ import annotations

from typing import Any

from core.errors import NotFound, ValidationFailed
from handlers.base import BaseHandler
from handlers.routing import route
from handlers.schemas.auth import (
    EmptySchema,
    LoginSchema,
    MeUpdateResultSchema,
    MeUpdateSchema,
    RefreshSchema,
    RegisterSchema,
    TokenPairSchema,
    UserSchema,
)
from models.repo import users as users_repo
from services.auth import AuthService

_user = UserSchema()
_pair = TokenPairSchema()


class AuthHandler(BaseHandler):
    @property
    def auth(self) -> AuthService:
        return self.ctx.auth

    @property
    def client_ip(self) -> str:
        """The address rate limits key on (Tornado always sets it on a real connection)."""
        return self.request.remote_ip or ""


class RegisterHandler(AuthHandler):
    openapi = {
        "post": {
            "summary": "Create an account",
            "body": RegisterSchema,
            "response": UserSchema,
            "status": 201,
            "auth": False,
        }
    }

    async def post(self) -> None:
        data = self.load_body(RegisterSchema())
        user = await self.auth.register(
            data["email"], data["password"], data["display_name"], self.client_ip
        )
        self.send(_user.dump(user), 201)


class LoginHandler(AuthHandler):
    openapi = {
        "post": {
            "summary": "Log in: an access and a refresh token",
            "body": LoginSchema,
            "response": TokenPairSchema,
            "auth": False,
        }
    }

    async def post(self) -> None:
        data = self.load_body(LoginSchema())
        pair = await self.auth.login(data["email"], data["password"], self.client_ip)
        self.send(_pair.dump(pair.to_json()))


class RefreshHandler(AuthHandler):
    openapi = {
        "post": {
            "summary": "Rotate a refresh token (single use)",
            "body": RefreshSchema,
            "response": TokenPairSchema,
            "auth": False,
        }
    }

    async def post(self) -> None:
        data = self.load_body(RefreshSchema())
        pair = await self.auth.refresh(data["refresh_token"], self.client_ip)
        self.send(_pair.dump(pair.to_json()))


class LogoutHandler(AuthHandler):
    openapi = {"post": {"summary": "Revoke this session and its access token", "status": 204}}

    async def post(self) -> None:
        principal = await self.require_user()
        self.load_body(EmptySchema())
        await self.auth.logout(principal)
        self.send(None, 204)


class MeHandler(AuthHandler):
    openapi = {
        "get": {"summary": "The caller's profile", "response": UserSchema},
        "patch": {
            "summary": "Update profile or change password (revokes other sessions)",
            "body": MeUpdateSchema,
            "response": MeUpdateResultSchema,
        },
    }

    async def get(self) -> None:
        principal = await self.require_user()
        user = await users_repo.get_user(self.ctx.db, principal.user_id)
        if user is None:
            raise NotFound("user not found")
        self.send(_user.dump(user))

    async def patch(self) -> None:
        principal = await self.require_user()
        data = self.load_body(MeUpdateSchema())
        if not data:
            raise ValidationFailed("nothing to update")
        wants_password = "new_password" in data or "current_password" in data
        if wants_password and not ("new_password" in data and "current_password" in data):
            raise ValidationFailed(
                "changing the password needs current_password and new_password",
                fields={"current_password": ["required together with new_password"]},
            )
        pair = None
        if wants_password:
            pair = await self.auth.change_password(
                principal, data["current_password"], data["new_password"], self.client_ip
            )
        user: dict[str, Any] | None
        if "display_name" in data:
            user = await users_repo.update_profile(
                self.ctx.db, principal.user_id, data["display_name"].strip()
            )
        else:
            user = await users_repo.get_user(self.ctx.db, principal.user_id)
        self.send(
            {"user": _user.dump(user), "tokens": _pair.dump(pair.to_json()) if pair else None}
        )


ROUTES = [
    route("/api/v1/auth/register/", RegisterHandler),
    route("/api/v1/auth/login/", LoginHandler),
    route("/api/v1/auth/token/refresh/", RefreshHandler),
    route("/api/v1/auth/logout/", LogoutHandler),
    route("/api/v1/auth/me/", MeHandler),
]
