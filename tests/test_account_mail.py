"""Password reset and email verification end to end: the request, the mail job, the message as
received by a real SMTP server (aiosmtpd), its link followed, the effect — plus expiry, single
use, rate limits, the same answer for unknown addresses and bad input on every endpoint."""

from __future__ import annotations

import dataclasses
from urllib.parse import parse_qs, urlencode, urlsplit

import pytest

from server.settings import Settings
from services.account_tokens import RESET_CONFIRM_PATH, VERIFY_CONFIRM_PATH
from services.mail_messages import render
from services.mailer import MAIL_JOB
from tests.conftest import create_user
from tests.mail_support import link_in, settle_other_mail, smtp_settings

RESET = "/api/v1/auth/password-reset/"
VERIFY = "/api/v1/auth/verify-email/"
NEW_PASSWORD = "a brand new passphrase"


@pytest.fixture
def settings(settings: Settings, smtp) -> Settings:
    return dataclasses.replace(
        smtp_settings(settings, smtp), account_mail_rate_per_account=3, account_mail_rate_per_ip=8
    )


async def send_mail(ctx) -> int:
    return (await ctx.scheduler.run_now(MAIL_JOB)).result


async def registered(api, ctx, name: str = "reader"):
    """A fresh user whose registration's verification mail is left unsent (settled)."""
    user = await create_user(api, name)
    await settle_other_mail(ctx)
    return user


def token_of(path: str) -> str:
    return parse_qs(urlsplit(path).query)["token"][0]


async def test_password_reset_over_smtp_then_link_followed(api, ctx, smtp):
    user = await registered(api, ctx)
    asked = await api.post(RESET, {"email": user.email.upper()})
    assert asked.status == 202, asked.body
    assert await send_mail(ctx) == 1
    [message] = smtp.inbox.parsed()
    assert smtp.inbox.messages[0].rcpt_tos == [user.email]
    assert message["Subject"] == "Reset your Collab password"
    assert "List-Unsubscribe" not in message  # security mail: no preference to turn off
    link = link_in(message, RESET_CONFIRM_PATH)
    token = token_of(link)
    # The raw token is nowhere in the database, only its hash.
    stored = await ctx.db.fetchval(
        "SELECT count(*) FROM account_tokens WHERE token_hash = $1", token
    )
    assert stored == 0
    # Following the link checks it without spending it.
    checked = await api.get(link)
    assert checked.status == 200, checked.body
    assert checked.body["email"] == user.email
    again = await api.get(link)
    assert again.status == 200

    done = await api.post(RESET_CONFIRM_PATH, {"token": token, "new_password": NEW_PASSWORD})
    assert done.status == 204, done.body
    # Every session is gone, like after a password change.
    me = await api.get("/api/v1/auth/me/", token=user.access_token)
    assert (me.status, me.error_code) == (401, "invalid_token")
    refreshed = await api.post("/api/v1/auth/token/refresh/", {"refresh_token": user.refresh_token})
    assert refreshed.status == 401
    old = await api.post("/api/v1/auth/login/", {"email": user.email, "password": user.password})
    assert old.status == 401
    new = await api.post("/api/v1/auth/login/", {"email": user.email, "password": NEW_PASSWORD})
    assert new.status == 200, new.body
    # A link sent to the address proves it: verified.
    me = await api.get("/api/v1/auth/me/", token=new.body["access_token"])
    assert me.body["email_verified_at"] is not None
    # Single use.
    reused = await api.post(
        RESET_CONFIRM_PATH, {"token": token, "new_password": "yet another one!"}
    )
    assert (reused.status, reused.error_code) == (410, "link_invalid")
    assert (await api.get(link)).status == 410


async def test_unknown_address_gets_the_same_answer_and_no_mail(api, ctx, smtp):
    user = await registered(api, ctx)
    known = await api.post(RESET, {"email": user.email})
    unknown = await api.post(RESET, {"email": "nobody-here@example.com"})
    assert (known.status, known.body) == (unknown.status, unknown.body)
    assert sorted(known.headers.keys()) == sorted(unknown.headers.keys())
    assert await send_mail(ctx) == 1
    assert [m.rcpt_tos for m in smtp.inbox.messages] == [[user.email]]
    # The unknown address's row is done (skipped), not retried.
    pending = await ctx.db.fetchval(
        "SELECT count(*) FROM outbox WHERE kind = 'password_reset_email'"
        " AND payload->>'email' = 'nobody-here@example.com' AND processed_at IS NULL"
    )
    assert pending == 0


async def test_deactivated_account_gets_no_reset_mail(api, ctx, smtp):
    user = await registered(api, ctx)
    await ctx.db.execute("UPDATE users SET is_active = false WHERE id = $1", user.id)
    asked = await api.post(RESET, {"email": user.email})
    assert asked.status == 202
    assert await send_mail(ctx) == 0
    assert smtp.inbox.messages == []


async def test_a_new_link_voids_the_older_one(api, ctx, smtp):
    user = await registered(api, ctx)
    for _ in range(2):
        assert (await api.post(RESET, {"email": user.email})).status == 202
        assert await send_mail(ctx) == 1
    first, second = (link_in(m, RESET_CONFIRM_PATH) for m in smtp.inbox.parsed())
    assert first != second
    stale = await api.post(
        RESET_CONFIRM_PATH, {"token": token_of(first), "new_password": NEW_PASSWORD}
    )
    assert (stale.status, stale.error_code) == (410, "link_invalid")
    fresh = await api.post(
        RESET_CONFIRM_PATH, {"token": token_of(second), "new_password": NEW_PASSWORD}
    )
    assert fresh.status == 204, fresh.body


async def test_expired_link_changes_nothing(api, ctx, smtp):
    user = await registered(api, ctx)
    await api.post(RESET, {"email": user.email})
    assert await send_mail(ctx) == 1
    link = link_in(smtp.inbox.parsed()[0], RESET_CONFIRM_PATH)
    await ctx.db.execute(
        "UPDATE account_tokens SET expires_at = now() - interval '1 second' WHERE user_id = $1",
        user.id,
    )
    assert (await api.get(link)).status == 410
    expired = await api.post(
        RESET_CONFIRM_PATH, {"token": token_of(link), "new_password": NEW_PASSWORD}
    )
    assert (expired.status, expired.error_code) == (410, "link_invalid")
    login = await api.post("/api/v1/auth/login/", {"email": user.email, "password": user.password})
    assert login.status == 200
    me = await api.get("/api/v1/auth/me/", token=user.access_token)
    assert me.status == 200


async def test_reset_requests_are_rate_limited_per_address_and_per_ip(api, ctx, smtp):
    user = await registered(api, ctx)
    for address in (user.email, "ghost@example.com"):  # the same limit, known or not
        for _ in range(3):
            assert (await api.post(RESET, {"email": address})).status == 202
        limited = await api.post(RESET, {"email": address})
        assert (limited.status, limited.error_code) == (429, "rate_limited")
        assert int(limited.headers["Retry-After"]) > 0
    # Refused requests count too: 8 from this IP so far, the per-IP limit; a fresh address from
    # it is refused as well.
    over_ip = await api.post(RESET, {"email": "third@example.com"})
    assert (over_ip.status, over_ip.error_code) == (429, "rate_limited")
    assert await send_mail(ctx) == 3  # only the real account's mails go out


async def test_registration_sends_a_verification_link(api, ctx, smtp):
    await settle_other_mail(ctx)
    user = await create_user(api, "newcomer")
    assert await send_mail(ctx) == 1
    [message] = smtp.inbox.parsed()
    assert message["To"] == user.email
    assert message["Subject"] == "Confirm your email address for Collab"
    link = link_in(message, VERIFY_CONFIRM_PATH)
    checked = await api.get(link)
    assert checked.status == 200 and checked.body["email"] == user.email
    me = await api.get("/api/v1/auth/me/", token=user.access_token)
    assert me.body["email_verified_at"] is None

    confirmed = await api.post(VERIFY_CONFIRM_PATH, {"token": token_of(link)})
    assert confirmed.status == 200, confirmed.body
    assert confirmed.body["id"] == user.id and confirmed.body["email_verified_at"]
    me = await api.get("/api/v1/auth/me/", token=user.access_token)
    assert me.body["email_verified_at"] == confirmed.body["email_verified_at"]
    reused = await api.post(VERIFY_CONFIRM_PATH, {"token": token_of(link)})
    assert (reused.status, reused.error_code) == (410, "link_invalid")
    again = await api.post(VERIFY, token=user.access_token)
    assert (again.status, again.error_code) == (409, "already_verified")
    # A mail still queued for a verified account is skipped, not sent.
    await ctx.db.execute(
        "INSERT INTO outbox (kind, payload) VALUES ('email_verification_email', $1)",
        {"user_id": user.id},
    )
    assert await send_mail(ctx) == 0


async def test_asking_for_a_new_verification_link(api, ctx, smtp):
    user = await registered(api, ctx)
    anonymous = await api.post(VERIFY)
    assert anonymous.status == 401
    asked = await api.post(VERIFY, token=user.access_token)
    assert asked.status == 202, asked.body
    assert await send_mail(ctx) == 1
    link = link_in(smtp.inbox.parsed()[0], VERIFY_CONFIRM_PATH)
    assert (await api.post(VERIFY_CONFIRM_PATH, {"token": token_of(link)})).status == 200
    for _ in range(2):  # 1 + 2 = the per-account limit of 3 reached…
        await api.post(VERIFY, token=user.access_token)
    limited = await api.post(VERIFY, token=user.access_token)
    assert limited.status == 429  # …counted before anything else is looked at


async def test_mail_is_never_sent_on_the_request_path(api, ctx, smtp):
    user = await registered(api, ctx)
    assert (await api.post(RESET, {"email": user.email})).status == 202
    assert smtp.inbox.messages == []  # only the job sends
    assert await send_mail(ctx) == 1


BAD_REQUESTS = [
    ("POST", RESET, {}),
    ("POST", RESET, {"email": "not an email"}),
    ("POST", RESET, {"email": "a@example.com", "extra": 1}),
    ("POST", RESET, {"email": "a\u0000@example.com"}),
    ("POST", RESET, {"email": 42}),
    ("POST", RESET, ["a@example.com"]),
    ("GET", RESET_CONFIRM_PATH, None),
    ("GET", RESET_CONFIRM_PATH + "?token=", None),
    ("GET", RESET_CONFIRM_PATH + "?token=" + "x" * 129, None),
    ("GET", RESET_CONFIRM_PATH + "?token=abc&more=1", None),
    ("GET", RESET_CONFIRM_PATH + "?token=%00", None),
    ("POST", RESET_CONFIRM_PATH, {"token": "abc"}),
    ("POST", RESET_CONFIRM_PATH, {"new_password": NEW_PASSWORD}),
    ("POST", RESET_CONFIRM_PATH, {"token": "abc", "new_password": "short"}),
    ("POST", RESET_CONFIRM_PATH, {"token": "x" * 129, "new_password": NEW_PASSWORD}),
    ("POST", RESET_CONFIRM_PATH, {"token": "abc", "new_password": NEW_PASSWORD, "user_id": "x"}),
    ("GET", VERIFY_CONFIRM_PATH, None),
    ("GET", VERIFY_CONFIRM_PATH + "?token=%ff", None),
    ("POST", VERIFY_CONFIRM_PATH, {}),
    ("POST", VERIFY_CONFIRM_PATH, {"token": ""}),
    ("POST", VERIFY_CONFIRM_PATH, {"token": ["abc"]}),
    ("POST", VERIFY_CONFIRM_PATH, {"token": "abc", "email": "b@example.com"}),
]


@pytest.mark.parametrize(("method", "path", "body"), BAD_REQUESTS)
async def test_bad_input_is_a_400_and_changes_nothing(api, ctx, smtp, method, path, body):
    await settle_other_mail(ctx)
    before = await ctx.db.fetchval("SELECT count(*) FROM outbox WHERE processed_at IS NULL")
    answer = await api.request(method, path, body)
    assert (answer.status, answer.error_code) == (400, "validation_error"), answer.body
    assert answer.body["error"]["fields"]
    after = await ctx.db.fetchval("SELECT count(*) FROM outbox WHERE processed_at IS NULL")
    assert after == before


async def test_verify_request_takes_an_empty_body(api, ctx, smtp):
    user = await registered(api, ctx)
    answer = await api.post(VERIFY, {"email": "other@example.com"}, token=user.access_token)
    assert (answer.status, answer.error_code) == (400, "validation_error")
    assert await send_mail(ctx) == 0


async def test_unknown_tokens_are_410_without_a_hint(api, ctx):
    for path in (RESET_CONFIRM_PATH, VERIFY_CONFIRM_PATH):
        checked = await api.get(path + "?token=never-issued")
        assert (checked.status, checked.error_code) == (410, "link_invalid")
    posted = await api.post(VERIFY_CONFIRM_PATH, {"token": "never-issued"})
    assert (posted.status, posted.error_code) == (410, "link_invalid")


def test_templates_escape_html_but_not_text():
    rendered = render(
        "password_reset",
        {
            "display_name": "<script>alert(1)</script>",
            "email": "a@example.com",
            "reset_url": "https://x.example/r?token=a&b",
            "ttl_minutes": 60,
        },
    )
    assert "<script>" not in rendered.html and "&lt;script&gt;" in rendered.html
    assert "Hello <script>alert(1)</script>," in rendered.text
    assert 'href="https://x.example/r?token=a&amp;b"' in rendered.html
    assert rendered.subject == "Reset your Collab password"


def test_text_part_reads_well():
    rendered = render(
        "email_verification",
        {"display_name": "Ann", "email": "a@example.com", "verify_url": "U", "ttl_hours": 72},
    )
    assert rendered.text.startswith(
        "Hello Ann,\n\nconfirm that a@example.com is your address:\nU\n"
    )


FORM = {"Content-Type": "application/x-www-form-urlencoded", "Accept": "text/html"}
PAGE = {"Accept": "text/html,application/xhtml+xml"}


async def test_a_person_resets_through_the_pages_the_link_opens(api, ctx, smtp):
    """No front end needed: the link opens a page whose form posts back (urlencoded)."""
    user = await registered(api, ctx)
    await api.post(RESET, {"email": user.email})
    assert await send_mail(ctx) == 1
    link = link_in(smtp.inbox.parsed()[0], RESET_CONFIRM_PATH)
    page = await api.get(link, headers=PAGE)
    assert page.status == 200 and page.headers["Content-Type"].startswith("text/html")
    assert f'<form method="post" action="{RESET_CONFIRM_PATH}">' in page.body
    assert f'name="token" value="{token_of(link)}"' in page.body
    assert user.email in page.body
    form = urlencode({"token": token_of(link), "new_password": NEW_PASSWORD}).encode()
    done = await api.post(RESET_CONFIRM_PATH, raw=form, headers=FORM)
    assert done.status == 200 and "Your password is changed" in done.body
    login = await api.post("/api/v1/auth/login/", {"email": user.email, "password": NEW_PASSWORD})
    assert login.status == 200
    again = await api.post(RESET_CONFIRM_PATH, raw=form, headers=FORM)
    assert (again.status, again.error_code) == (410, "link_invalid")


async def test_a_person_verifies_through_the_page_the_link_opens(api, ctx, smtp):
    await settle_other_mail(ctx)
    user = await create_user(api, "clicker")
    assert await send_mail(ctx) == 1
    link = link_in(smtp.inbox.parsed()[0], VERIFY_CONFIRM_PATH)
    page = await api.get(link, headers=PAGE)
    assert page.status == 200 and "Confirm my address" in page.body
    form = urlencode({"token": token_of(link)}).encode()
    done = await api.post(VERIFY_CONFIRM_PATH, raw=form, headers=FORM)
    assert done.status == 200 and f"<strong>{user.email}</strong> is verified" in done.body
    me = await api.get("/api/v1/auth/me/", token=user.access_token)
    assert me.body["email_verified_at"] is not None


@pytest.mark.parametrize(
    "raw",
    [
        b"token=a&token=b",
        b"token=abc&new_password=" + b"x" * 12 + b"&role=admin",
        b"token=%00&new_password=long%20enough%20pw",
        b"token=%ff&new_password=long%20enough%20pw",
        b"token=abc&new_password=short",
        b"&&=",
    ],
)
async def test_bad_forms_are_a_400(api, ctx, raw):
    answer = await api.post(RESET_CONFIRM_PATH, raw=raw, headers=FORM)
    assert (answer.status, answer.error_code) == (400, "validation_error"), answer.body
