"""Auth API: success paths, bad input, token attacks (RELIABILITY S8, S10, S17)."""

from __future__ import annotations

import base64
import dataclasses
import json
import time

import jwt
import pytest

from services import tokens

REGISTER = "/api/v1/auth/register/"
LOGIN = "/api/v1/auth/login/"
REFRESH = "/api/v1/auth/token/refresh/"
LOGOUT = "/api/v1/auth/logout/"
ME = "/api/v1/auth/me/"
# Fixed windows: a one-hour window keeps a burst of test requests from straddling a boundary.
HOUR_WINDOW_S = 3600


async def test_register_login_me(api, make_user):
    user = await make_user("alice")
    me = await api.get(ME, token=user.access_token)
    assert me.status == 200
    assert me.body["email"] == user.email
    assert me.body["display_name"] == "Alice"
    assert "password" not in me.body and "password_hash" not in me.body


async def test_register_duplicate_email_is_409_case_insensitive(api, make_user):
    user = await make_user()
    again = await api.post(
        REGISTER,
        {"email": user.email.upper(), "password": "another long password", "display_name": "X"},
    )
    assert again.status == 409
    assert again.error_code == "email_taken"


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"email": "not-an-email", "password": "long enough pw", "display_name": "a"}, "email"),
        ({"email": "a@example.com", "password": "short", "display_name": "a"}, "password"),
        ({"email": "a@example.com", "password": "long enough pw"}, "display_name"),
        ({"email": "a@example.com", "password": 12345678901, "display_name": "a"}, "password"),
        (
            {
                "email": "a@example.com",
                "password": "long enough pw",
                "display_name": "a",
                "is_admin": True,
            },
            "is_admin",
        ),
    ],
)
async def test_register_rejects_bad_bodies(api, body, field):
    response = await api.post(REGISTER, body)
    assert response.status == 400
    assert response.error_code == "validation_error"
    assert field in response.body["error"]["fields"]


async def test_malformed_json_and_non_object_body(api):
    broken = await api.post(REGISTER, raw=b'{"email": ')
    assert broken.status == 400
    assert broken.error_code == "validation_error"
    assert "malformed JSON" in broken.body["error"]["message"]
    listing = await api.post(REGISTER, raw=b"[1, 2]")
    assert listing.status == 400


async def test_oversized_body_is_413(api, settings):
    big = json.dumps(
        {
            "email": "a@example.com",
            "password": "x" * (settings.max_body_bytes + 10),
            "display_name": "a",
        }
    ).encode()
    response = await api.post(REGISTER, raw=big)
    assert response.status == 413
    assert response.error_code == "payload_too_large"


async def test_wrong_password_and_unknown_email_are_the_same_401(api, make_user):
    user = await make_user()
    wrong = await api.post(LOGIN, {"email": user.email, "password": "definitely wrong"})
    unknown = await api.post(LOGIN, {"email": "nobody@example.com", "password": "whatever12"})
    assert wrong.status == unknown.status == 401
    assert wrong.body == unknown.body


async def test_missing_and_garbage_tokens_are_401(api):
    assert (await api.get(ME)).status == 401
    assert (await api.get(ME, token="garbage")).status == 401
    basic = await api.get(ME, headers={"Authorization": "Basic dXNlcjpwYXNz"})
    assert basic.status == 401


def _forge(payload: dict, key: bytes | str, alg: str = "HS256", headers: dict | None = None) -> str:
    return jwt.encode(payload, key, algorithm=alg, headers=headers)


def _claims_of(token: str) -> dict:
    return jwt.decode(token, options={"verify_signature": False})


async def test_token_attacks_all_get_the_same_401(api, make_user, settings):
    """S8: expired, tampered, alg none, missing exp, wrong aud/iss/type, refresh as access."""
    user = await make_user()
    good = _claims_of(user.access_token)
    access_key = tokens._key(settings, "access")
    refresh_key = tokens._key(settings, "refresh")
    header, payload, signature = user.access_token.split(".")
    tampered_payload = (
        base64.urlsafe_b64encode(
            json.dumps({**good, "sub": "00000000-0000-0000-0000-000000000000"}).encode()
        )
        .rstrip(b"=")
        .decode()
    )
    none_header = base64.urlsafe_b64encode(b'{"alg":"none","typ":"JWT"}').rstrip(b"=").decode()
    no_exp = {k: v for k, v in good.items() if k != "exp"}
    forged = {
        "expired": _forge(
            {**good, "exp": int(time.time()) - 60, "iat": int(time.time()) - 120}, access_key
        ),
        "tampered": f"{header}.{tampered_payload}.{signature}",
        "alg_none": f"{none_header}.{payload}.",
        "missing_exp": _forge(no_exp, access_key),
        "wrong_aud": _forge({**good, "aud": "someone-else"}, access_key),
        "wrong_iss": _forge({**good, "iss": "evil"}, access_key),
        "wrong_type": _forge({**good, "type": "refresh"}, access_key),
        "refresh_as_access": user.refresh_token,
        "refresh_key": _forge(good, refresh_key),
        "other_secret": _forge(good, "x" * 64),
        "kid_injection": _forge(
            good, access_key, headers={"kid": "../../dev/null", "jku": "http://evil/jwks"}
        ),
        "hs512": _forge(good, access_key, alg="HS512"),
    }
    bodies = set()
    for name, token in forged.items():
        response = await api.get(ME, token=token)
        if name == "kid_injection":
            # The key never comes from the header: extra headers change nothing, still valid.
            assert response.status == 200, name
            continue
        assert response.status == 401, name
        bodies.add(json.dumps(response.body, sort_keys=True))
    assert len(bodies) == 1, "every rejection must look the same"


async def test_access_token_at_refresh_endpoint_is_401(api, make_user):
    user = await make_user()
    response = await api.post(REFRESH, {"refresh_token": user.access_token})
    assert response.status == 401


async def test_refresh_rotation_and_reuse_revokes_family(api, make_user):
    """S10: RT1 → RT2; replaying RT1 revokes the family: RT2 and its access tokens die."""
    user = await make_user()
    first = await api.post(REFRESH, {"refresh_token": user.refresh_token})
    assert first.status == 200
    rt2, at2 = first.body["refresh_token"], first.body["access_token"]
    assert rt2 != user.refresh_token
    assert (await api.get(ME, token=at2)).status == 200

    replay = await api.post(REFRESH, {"refresh_token": user.refresh_token})
    assert replay.status == 401
    assert (await api.post(REFRESH, {"refresh_token": rt2})).status == 401
    assert (await api.get(ME, token=at2)).status == 401
    assert (await api.get(ME, token=user.access_token)).status == 401


async def test_concurrent_refresh_has_a_single_winner(api, make_user):
    import asyncio

    user = await make_user()
    results = await asyncio.gather(
        *(api.post(REFRESH, {"refresh_token": user.refresh_token}) for _ in range(5))
    )
    assert sorted(r.status for r in results).count(200) == 1


async def test_logout_then_both_tokens_fail(api, make_user):
    user = await make_user()
    out = await api.post(LOGOUT, token=user.access_token)
    assert out.status == 204
    assert (await api.get(ME, token=user.access_token)).status == 401
    assert (await api.post(REFRESH, {"refresh_token": user.refresh_token})).status == 401


async def test_logout_rejects_unknown_fields(api, make_user):
    user = await make_user()
    response = await api.post(LOGOUT, {"everything": True}, token=user.access_token)
    assert response.status == 400
    assert (await api.get(ME, token=user.access_token)).status == 200


async def test_denylist_enforced_from_postgres_when_redis_is_down(api, make_user, ctx, stack):
    """R11: with Redis unreachable, revoked tokens are still refused (fail closed)."""
    user = await make_user()
    assert (await api.post(LOGOUT, token=user.access_token)).status == 204
    other = await make_user()
    original = ctx.cache.client
    ctx.cache.client = type(original).from_url(
        "redis://127.0.0.1:1/0", socket_timeout=0.2, socket_connect_timeout=0.2
    )
    try:
        assert (await api.get(ME, token=user.access_token)).status == 401
        assert (await api.get(ME, token=other.access_token)).status == 200
    finally:
        await ctx.cache.client.aclose()
        ctx.cache.client = original


async def test_profile_update_and_password_change_revokes_sessions(api, make_user):
    user = await make_user()
    second_login = await api.post(LOGIN, {"email": user.email, "password": user.password})
    renamed = await api.patch(ME, {"display_name": "Renamed"}, token=user.access_token)
    assert renamed.status == 200
    assert renamed.body["user"]["display_name"] == "Renamed"
    assert renamed.body["tokens"] is None

    wrong = await api.patch(
        ME,
        {"current_password": "nope nope nope", "new_password": "a brand new password"},
        token=user.access_token,
    )
    assert wrong.status == 401
    changed = await api.patch(
        ME,
        {"current_password": user.password, "new_password": "a brand new password"},
        token=user.access_token,
    )
    assert changed.status == 200, changed.body
    fresh = changed.body["tokens"]["access_token"]
    for old in (user.access_token, second_login.body["access_token"]):
        assert (await api.get(ME, token=old)).status == 401
    assert (await api.post(REFRESH, {"refresh_token": user.refresh_token})).status == 401
    assert (await api.get(ME, token=fresh)).status == 200
    assert (await api.post(LOGIN, {"email": user.email, "password": user.password})).status == 401
    relog = await api.post(LOGIN, {"email": user.email, "password": "a brand new password"})
    assert relog.status == 200


async def test_me_patch_rejects_mass_assignment_and_half_password(api, make_user):
    user = await make_user()
    for body in (
        {"email": "x@example.com"},
        {"is_active": False},
        {"new_password": "abcdefghijk"},
        {},
    ):
        response = await api.patch(ME, body, token=user.access_token)
        assert response.status == 400, body
    me = await api.get(ME, token=user.access_token)
    assert me.body["email"] == user.email


async def test_login_rate_limit_per_email(api, make_user, ctx):
    """S17: 429 with Retry-After once the per-account budget is spent."""
    object.__setattr__(
        ctx,
        "settings",
        dataclasses.replace(
            ctx.settings, login_rate_per_email=3, login_rate_window_s=HOUR_WINDOW_S
        ),
    )
    user = await make_user()
    statuses = []
    for _ in range(5):
        response = await api.post(LOGIN, {"email": user.email, "password": "wrong password!"})
        statuses.append(response.status)
    assert statuses[:2] == [401, 401]
    assert statuses[-1] == 429
    limited = await api.post(LOGIN, {"email": user.email, "password": user.password})
    assert limited.status == 429
    assert int(limited.headers["Retry-After"]) >= 1
    assert limited.error_code == "rate_limited"


async def test_login_rate_limit_per_ip(api, make_user, ctx):
    object.__setattr__(
        ctx,
        "settings",
        dataclasses.replace(ctx.settings, login_rate_per_ip=2, login_rate_window_s=HOUR_WINDOW_S),
    )
    statuses = [
        (await api.post(LOGIN, {"email": f"n{i}@example.com", "password": "x" * 12})).status
        for i in range(4)
    ]
    assert statuses == [401, 401, 429, 429]


async def test_refresh_rate_limit_per_ip(api, make_user, ctx):
    """S17 for the refresh endpoint: guessing refresh tokens is throttled like logins."""
    object.__setattr__(
        ctx,
        "settings",
        dataclasses.replace(ctx.settings, refresh_rate_per_ip=2, login_rate_window_s=HOUR_WINDOW_S),
    )
    statuses = [(await api.post(REFRESH, {"refresh_token": f"guess-{i}"})).status for i in range(3)]
    assert statuses == [401, 401, 429]


async def test_password_change_guesses_share_the_login_limits(api, make_user, ctx):
    """S24: wrong `current_password`s on PATCH /me spend the account's login budget (and the
    IP's) before any hashing; once spent, even the right password is refused with 429."""
    object.__setattr__(
        ctx,
        "settings",
        dataclasses.replace(
            ctx.settings, login_rate_per_email=4, login_rate_window_s=HOUR_WINDOW_S
        ),
    )
    user = await make_user()  # its login spent 1 of the 4
    guess = {"current_password": "wrong guess 123", "new_password": "a brand new password"}
    assert (await api.post(LOGIN, {"email": user.email, "password": "nope nope"})).status == 401
    statuses = [(await api.patch(ME, guess, token=user.access_token)).status for _ in range(3)]
    assert statuses == [401, 401, 429]  # attempts 3 and 4 are checked, the 5th is over
    right = {"current_password": user.password, "new_password": "a brand new password"}
    limited = await api.patch(ME, right, token=user.access_token)
    assert (limited.status, limited.error_code) == (429, "rate_limited")
    assert int(limited.headers["Retry-After"]) >= 1
    assert (await api.post(LOGIN, {"email": user.email, "password": user.password})).status == 429
    assert (await api.get(ME, token=user.access_token)).status == 200  # nothing changed


async def test_password_change_guesses_are_limited_per_ip(api, make_user, ctx):
    object.__setattr__(
        ctx,
        "settings",
        dataclasses.replace(ctx.settings, login_rate_per_ip=3, login_rate_window_s=HOUR_WINDOW_S),
    )
    users = [await make_user() for _ in range(2)]  # two logins from this IP: 2 of 3
    guess = {"current_password": "wrong guess 123", "new_password": "a brand new password"}
    first = await api.patch(ME, guess, token=users[0].access_token)
    second = await api.patch(ME, guess, token=users[1].access_token)
    assert (first.status, second.status) == (401, 429)


async def test_login_redoes_a_hash_made_with_other_parameters(api, make_user, ctx):
    """Hashes now use one lane (one thread each, so the pool bounds the cores hashing takes);
    an old 4-lane hash still verifies and is replaced at the next successful login."""
    from argon2 import PasswordHasher

    user = await make_user()
    old = PasswordHasher().hash(user.password)  # argon2-cffi defaults: p=4
    await ctx.db.execute("UPDATE users SET password_hash = $2 WHERE id = $1", user.id, old)
    login = await api.post(LOGIN, {"email": user.email, "password": user.password})
    assert login.status == 200
    stored = await ctx.db.fetchval("SELECT password_hash FROM users WHERE id = $1", user.id)
    assert stored != old and ",p=1$" in stored
    assert (await api.get(ME, token=user.access_token)).status == 200  # no session revoked
    again = await api.post(LOGIN, {"email": user.email, "password": user.password})
    assert again.status == 200
