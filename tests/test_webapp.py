"""The web app served at `/` (issue 14 items 1–2): pages, assets, and signing up in Chromium."""

from __future__ import annotations

import re
import uuid

from handlers.webapp import WEBAPP_DIR
from tests.browser_support import browser, new_page, sign_in


async def test_the_app_is_served_at_root_with_history_fallback(api) -> None:
    for path in (
        "/",
        "/w",
        f"/w/{uuid.uuid4()}/d/{uuid.uuid4()}",
        f"/w/{uuid.uuid4()}/b/{uuid.uuid4()}",
    ):
        page = await api.get(path)
        assert page.status == 200, path
        assert page.headers["Content-Type"].startswith("text/html")
        assert page.headers["Cache-Control"] == "no-cache"
        assert '<div id="root">' in page.body

    script = re.search(r'src="(/assets/[^"]+\.js)"', (WEBAPP_DIR / "index.html").read_text())
    assert script, "index.html loads no script from /assets/"
    asset = await api.get(script.group(1))
    assert asset.status == 200
    assert "javascript" in asset.headers["Content-Type"]
    assert "immutable" in asset.headers["Cache-Control"]

    # Not app pages: the API's JSON 404 as before, assets included.
    for path in ("/nope", "/assets/missing.js", "/wx", "/api/v1/nope"):
        missing = await api.get(path)
        assert missing.status == 404, path
        assert missing.error_code == "not_found", path


async def test_sign_up_create_a_workspace_and_sign_in_again(chromium, ws_port, make_user) -> None:
    base = f"http://127.0.0.1:{ws_port}"
    email = f"web-{uuid.uuid4().hex[:10]}@example.com"
    async with browser(chromium) as connected:
        page = await new_page(connected)
        await page.goto(base + "/")
        await page.get_by_role("tab", name="Create account").click()
        await page.get_by_label("Name", exact=True).fill("Wendy Web")
        await page.get_by_label("Email", exact=True).fill(email)
        await page.get_by_label("Password", exact=True).fill("short")
        await page.get_by_role("button", name="Create account").last.click()
        # The API's validation error, as a sentence (not JSON, not a status code).
        alert = page.get_by_role("alert")
        await alert.wait_for()
        assert "password" in (await alert.inner_text()).lower()

        await page.get_by_label("Password", exact=True).fill("a long enough password")
        await page.get_by_role("button", name="Create account").last.click()
        await page.get_by_text("Welcome, Wendy Web").wait_for()
        await page.get_by_label("New workspace name").fill("Web team")
        await page.get_by_role("button", name="Create", exact=True).click()
        await page.get_by_role("heading", name="Web team").wait_for()
        assert re.search(r"/w/[0-9a-f-]{36}$", page.url)
        await page.get_by_role("button", name="Sign out").click()

        await page.get_by_label("Email", exact=True).fill(email)
        await page.get_by_label("Password", exact=True).fill("not the password")
        await page.get_by_role("button", name="Sign in", exact=True).last.click()
        await page.get_by_text("That email and password do not match an account.").wait_for()
        await sign_in(page, base, email, "a long enough password")
        await page.get_by_role("heading", name="Web team").wait_for()
        assert await page.get_by_role("combobox", name="Workspace").input_value() != ""
