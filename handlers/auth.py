"""`/api/v1/auth/`: register, login, token refresh, logout, me."""

from __future__ import annotations

from handlers.base import BaseHandler, signed_in
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
from services import profile
from services.auth import AuthService
from services.auth_guard import Principal

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

    @signed_in
    async def post(self, principal: Principal) -> None:
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

    @signed_in
    async def get(self, principal: Principal) -> None:
        self.send(_user.dump(await profile.get_profile(self.ctx, principal.user_id)))

    @signed_in
    async def patch(self, principal: Principal) -> None:
        change = profile.ProfileChange.of(self.load_body(MeUpdateSchema()))
        user, pair = await profile.change_profile(
            self.ctx, self.auth, principal, change, self.client_ip
        )
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
