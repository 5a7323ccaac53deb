"""Instance admins through the real CLI: `collab createsuperuser` and `collab users …` against the
fixtures' Postgres, NATS and Redis, checked through the HTTP API a client uses."""

from __future__ import annotations

import json
import uuid

from ops.exit_codes import ExitCode
from tests.test_ops_documents import collab

ME = "/api/v1/auth/me/"
LOGIN = "/api/v1/auth/login/"
REFRESH = "/api/v1/auth/token/refresh/"
PASSWORD = "correct horse battery staple"


def _env(settings) -> dict[str, str]:
    return {"REDIS_URL": settings.redis_url}


async def test_createsuperuser_non_interactive_then_listed_as_admin(api, settings):
    email = f"root-{uuid.uuid4().hex[:8]}@example.com"
    env = {**_env(settings), "COLLAB_SUPERUSER_PASSWORD": PASSWORD}
    code, out, err = await collab(settings, "createsuperuser", "--email", email, "--json", env=env)
    assert code == ExitCode.OK, err
    created = json.loads(out)
    assert created["is_admin"] is True and created["email"] == email
    login = await api.post(LOGIN, {"email": email, "password": PASSWORD})
    assert login.status == 200

    code, out, err = await collab(settings, "createsuperuser", "--email", email, env=env)
    assert code == ExitCode.CANT_CREATE and "already exists" in err

    # The session database holds every test's users (over 1,000 late in the suite): page from
    # just before this email instead of hoping it falls on the first page.
    code, out, _ = await collab(
        settings,
        "users",
        "list",
        "--after",
        email[:-1],
        "--limit",
        "5",
        "--json",
        env=_env(settings),
    )
    assert code == ExitCode.OK
    (row,) = [u for u in json.loads(out) if u["email"] == email]
    assert row["is_admin"] and row["is_active"]


async def test_createsuperuser_without_terminal_or_password_is_a_usage_error(settings):
    code, out, err = await collab(
        settings, "createsuperuser", "--email", "x@example.com", "--json", env=_env(settings)
    )
    assert code == ExitCode.USAGE and "COLLAB_SUPERUSER_PASSWORD" in err
    assert json.loads(out)["error"]["code"] == "usage"


async def test_deactivate_voids_tokens_and_login_activate_allows_login(
    api, ctx, make_user, settings
):
    user = await make_user("mallory")
    assert (await api.get(ME, token=user.access_token)).status == 200
    # The node now trusts its complete Redis copy: the 401 below needs the command's Redis write.
    assert await ctx.denylist.wait_reloaded()

    code, out, err = await collab(
        settings, "users", "deactivate", user.email, "--json", env=_env(settings)
    )
    assert code == ExitCode.OK, err
    assert json.loads(out)["is_active"] is False

    assert (await api.get(ME, token=user.access_token)).status == 401
    assert (await api.post(REFRESH, {"refresh_token": user.refresh_token})).status == 401
    assert (await api.post(LOGIN, {"email": user.email, "password": user.password})).status == 401

    code, out, err = await collab(
        settings, "users", "activate", user.id, "--json", env=_env(settings)
    )
    assert code == ExitCode.OK, err
    assert json.loads(out)["is_active"] is True
    assert (await api.get(ME, token=user.access_token)).status == 401  # old tokens stay void
    login = await api.post(LOGIN, {"email": user.email, "password": user.password})
    assert login.status == 200
    assert (await api.get(ME, token=login.body["access_token"])).status == 200


async def test_set_admin_and_unknown_user(make_user, settings):
    user = await make_user("bob")
    code, out, err = await collab(
        settings, "users", "set-admin", user.email, "--json", env=_env(settings)
    )
    assert code == ExitCode.OK, err
    assert json.loads(out)["is_admin"] is True
    code, out, _ = await collab(
        settings, "users", "set-admin", user.id, "--off", "--json", env=_env(settings)
    )
    assert json.loads(out)["is_admin"] is False

    code, out, err = await collab(
        settings, "users", "deactivate", "nobody@example.com", "--json", env=_env(settings)
    )
    assert code == ExitCode.NOT_FOUND and "no such user" in err
    assert json.loads(out)["error"]["code"] == "not_found"
    code, _, _ = await collab(settings, "users", "list", "--limit", "0", env=_env(settings))
    assert code == ExitCode.USAGE
