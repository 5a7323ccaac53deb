"""`/api/v1/auth/`: register, login, token refresh, logout, me, password reset, email
verification."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from handlers.base import BaseHandler, signed_in
from handlers.routing import route
from handlers.schemas.auth import (
    AcceptedSchema,
    EmptySchema,
    LinkStatusSchema,
    LinkTokenQuerySchema,
    LoginSchema,
    MeUpdateResultSchema,
    MeUpdateSchema,
    PasswordConfirmSchema,
    PasswordResetConfirmSchema,
    PasswordResetRequestSchema,
    RefreshSchema,
    RegisterSchema,
    RevokedCountSchema,
    SessionListSchema,
    TokenPairSchema,
    UserSchema,
    VerifyEmailConfirmSchema,
)
from models.account_tokens import EMAIL_VERIFICATION, PASSWORD_RESET
from services import account_lifecycle, account_tokens, profile
from services.auth import AuthService
from services.auth_guard import Principal
from services.deps import Deps
from services.passwords import MIN_PASSWORD_LENGTH

_user = UserSchema()
_pair = TokenPairSchema()


class AuthHandler(BaseHandler):
    @property
    def auth(self) -> AuthService:
        return self.ctx.auth

    def link_page(self, template: str, found: dict, extra: dict) -> None:
        """The page a person reaches from a reset or verification mail: a form posting back
        here (urlencoded), or the outcome after it; API clients get JSON instead."""
        self.send_html(
            template,
            {
                "subject": "Collab",
                "email": found["email"],
                "expires_at": found.get("expires_at"),
                "action": self.request.path,
                "app_url": self.ctx.settings.public_base_url.rstrip("/") + "/",
                **extra,
            },
        )

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
        pair = await self.auth.login(
            data["email"], data["password"], self.client_ip, self.request.headers.get("User-Agent")
        )
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


def accepted(detail: str) -> dict[str, str]:
    return AcceptedSchema().dump({"status": "accepted", "detail": detail})


class PasswordResetHandler(AuthHandler):
    openapi = {
        "post": {
            "summary": "Ask for a password reset link by email (same 202 for any address)",
            "body": PasswordResetRequestSchema,
            "response": AcceptedSchema,
            "status": 202,
            "auth": False,
        }
    }

    async def post(self) -> None:
        data = self.load_body(PasswordResetRequestSchema())
        await account_tokens.request_password_reset(
            self.ctx, self.auth, data["email"], self.client_ip
        )
        self.send(accepted("if an account has this address, a reset link is on its way"), 202)


class PasswordResetConfirmHandler(AuthHandler):
    openapi = {
        "get": {
            "summary": "Check a password reset link without using it (with Accept: text/html,"
            " a page with the new-password form posting back here)",
            "query": LinkTokenQuerySchema,
            "response": LinkStatusSchema,
            "html": True,
            "auth": False,
        },
        "post": {
            "summary": "Set a new password with a reset link (single use; signs out everywhere)."
            " The page's form posts the same fields urlencoded and gets a page back",
            "body": PasswordResetConfirmSchema,
            "status": 204,
            "auth": False,
        },
    }

    async def get(self) -> None:
        token = self.load_query(LinkTokenQuerySchema())["token"]
        status = await account_tokens.check_link(
            self.ctx, self.auth, PASSWORD_RESET, token, self.client_ip
        )
        if self.wants_page():
            page = {"token": token, "min_length": MIN_PASSWORD_LENGTH, "done": False}
            self.link_page("password_reset_page", status, page)
            return
        self.send(LinkStatusSchema().dump(status))

    async def post(self) -> None:
        form = self.is_form()
        schema = PasswordResetConfirmSchema()
        data = self.load_form(schema) if form else self.load_body(schema)
        email = await account_tokens.confirm_password_reset(
            self.ctx, self.auth, data["token"], data["new_password"], self.client_ip
        )
        if form:
            self.link_page("password_reset_page", {"email": email}, {"done": True})
            return
        self.send(None, 204)


class VerifyEmailHandler(AuthHandler):
    openapi = {
        "post": {
            "summary": "Send me a new email verification link",
            "response": AcceptedSchema,
            "status": 202,
        }
    }

    @signed_in
    async def post(self, principal: Principal) -> None:
        self.load_body(EmptySchema())
        await account_tokens.request_verification(
            self.ctx, self.auth, principal.user_id, self.client_ip
        )
        self.send(accepted("a verification link is on its way"), 202)


class VerifyEmailConfirmHandler(AuthHandler):
    openapi = {
        "get": {
            "summary": "Check an email verification link without using it (with Accept:"
            " text/html, a page with a confirm button posting back here)",
            "query": LinkTokenQuerySchema,
            "response": LinkStatusSchema,
            "html": True,
            "auth": False,
        },
        "post": {
            "summary": "Verify my email address with a link (single use). The page's form posts"
            " the token urlencoded and gets a page back",
            "body": VerifyEmailConfirmSchema,
            "response": UserSchema,
            "auth": False,
        },
    }

    async def get(self) -> None:
        token = self.load_query(LinkTokenQuerySchema())["token"]
        status = await account_tokens.check_link(
            self.ctx, self.auth, EMAIL_VERIFICATION, token, self.client_ip
        )
        if self.wants_page():
            self.link_page("verify_email_page", status, {"token": token, "done": False})
            return
        self.send(LinkStatusSchema().dump(status))

    async def post(self) -> None:
        form = self.is_form()
        schema = VerifyEmailConfirmSchema()
        data = self.load_form(schema) if form else self.load_body(schema)
        user = await account_tokens.confirm_verification(
            self.ctx, self.auth, data["token"], self.client_ip
        )
        if form:
            self.link_page("verify_email_page", user, {"done": True})
            return
        self.send(_user.dump(user))


class SessionsHandler(AuthHandler):
    openapi = {
        "get": {
            "summary": "My sessions that can still refresh (device, created, last used)",
            "response": SessionListSchema,
        }
    }

    @signed_in
    async def get(self, principal: Principal) -> None:
        sessions = await account_lifecycle.list_sessions(self.ctx, principal)
        self.send(SessionListSchema().dump({"items": sessions}))


class SessionHandler(AuthHandler):
    openapi = {
        "delete": {
            "summary": "End one of my sessions: its refresh token stops working, its sockets "
            "close (4401)",
            "status": 204,
        }
    }

    @signed_in
    async def delete(self, principal: Principal, session_id: str) -> None:
        self.load_body(EmptySchema())
        await account_lifecycle.revoke_session(self.ctx, principal, session_id)
        self.send(None, 204)


class RevokeOtherSessionsHandler(AuthHandler):
    openapi = {
        "post": {
            "summary": "End every session of mine but this one",
            "body": EmptySchema,
            "response": RevokedCountSchema,
        }
    }

    @signed_in
    async def post(self, principal: Principal) -> None:
        self.load_body(EmptySchema())
        revoked = await account_lifecycle.revoke_other_sessions(self.ctx, principal)
        self.send(RevokedCountSchema().dump({"revoked": revoked}))


class AccountActionHandler(AuthHandler):
    """An irreversible change to the caller's own account, with the password asked again (a
    subclass names the service action)."""

    action: Callable[[Deps, AuthService, Principal, str, str], Awaitable[None]]

    @signed_in
    async def post(self, principal: Principal) -> None:
        data = self.load_body(PasswordConfirmSchema())
        await type(self).action(self.ctx, self.auth, principal, data["password"], self.client_ip)
        self.send(None, 204)


class DeactivateMeHandler(AccountActionHandler):
    openapi = {
        "post": {
            "summary": "Deactivate my account (password asked again): every session ends, "
            "login is refused until an instance admin activates it",
            "body": PasswordConfirmSchema,
            "status": 204,
        }
    }
    action = staticmethod(account_lifecycle.deactivate_account)


class DeleteMeHandler(AccountActionHandler):
    openapi = {
        "post": {
            "summary": "Delete my account (password asked again; 409 sole_owner while I am "
            "the only owner of a workspace)",
            "body": PasswordConfirmSchema,
            "status": 204,
        }
    }
    action = staticmethod(account_lifecycle.delete_account)


ROUTES = [
    route("/api/v1/auth/register/", RegisterHandler),
    route("/api/v1/auth/login/", LoginHandler),
    route("/api/v1/auth/token/refresh/", RefreshHandler),
    route("/api/v1/auth/logout/", LogoutHandler),
    route("/api/v1/auth/me/", MeHandler),
    route("/api/v1/auth/me/deactivate/", DeactivateMeHandler),
    route("/api/v1/auth/me/delete/", DeleteMeHandler),
    route("/api/v1/auth/sessions/", SessionsHandler),
    # Before `{session_id}`: the literal segment must not be taken for an id.
    route("/api/v1/auth/sessions/revoke-others/", RevokeOtherSessionsHandler),
    route("/api/v1/auth/sessions/{session_id}/", SessionHandler),
    route("/api/v1/auth/password-reset/", PasswordResetHandler),
    route("/api/v1/auth/password-reset/confirm/", PasswordResetConfirmHandler),
    route("/api/v1/auth/verify-email/", VerifyEmailHandler),
    route("/api/v1/auth/verify-email/confirm/", VerifyEmailConfirmHandler),
]
