"""The web app served at `/` (issue 14 items 1–2): pages, assets, and signing up in Chromium."""

from __future__ import annotations

import dataclasses
import re
import uuid

import pytest
from playwright.async_api import expect

from handlers.webapp import WEBAPP_DIR
from server.settings import Settings
from tests.browser_support import TIMEOUT_MS, browser, new_page, sign_in

#: Access tokens live 5 s here, so the app must refresh while the test uses it.
SHORT_TTL_S = 5


@pytest.fixture
def settings(settings: Settings) -> Settings:
    return dataclasses.replace(settings, access_token_ttl_s=SHORT_TTL_S)


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
        assert "script-src 'self';" in page.headers["Content-Security-Policy"]
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
        async with page.expect_response(
            lambda r: r.url.endswith("/api/v1/auth/token/refresh/") and r.status == 200,
            timeout=TIMEOUT_MS,
        ):
            await page.get_by_role("button", name="Create account").last.click()
            await page.get_by_text("Welcome, Wendy Web").wait_for()
        # The access token expired (the inbox socket closed 4401) and the app refreshed it:
        # the next call works, still signed in.
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

        # Phone width: the sidebar folds behind the menu button.
        await page.set_viewport_size({"width": 390, "height": 800})
        await expect(page.get_by_role("navigation", name="Sidebar")).to_be_hidden()
        await page.get_by_role("button", name="Menu").click()
        await expect(page.get_by_role("navigation", name="Sidebar")).to_be_visible()
        await page.get_by_role("button", name="New page").click()
        await expect(page.get_by_label("Page title")).to_have_value("Untitled")
        await expect(page.get_by_role("navigation", name="Sidebar")).to_be_hidden()
        await page.get_by_label("Page title").fill("Parent page")
        await page.get_by_label("Page title").press("Enter")
        # A sub-page, from the tree: it opens, and the tree shows it under its parent.
        await page.get_by_role("button", name="Menu").click()
        await page.get_by_role("button", name="New sub-page of Parent page").click()
        await expect(page.get_by_label("Page title")).to_have_value("Untitled")
        await page.get_by_role("button", name="Menu").click()
        parent = page.get_by_role("treeitem").filter(has_text="Parent page")
        await expect(parent.get_by_role("group").get_by_role("link")).to_have_text(["Untitled"])
        await page.get_by_role("button", name="Menu").click()
        await expect(page.get_by_test_id("connection")).to_have_attribute("data-state", "connected")
        width = await page.evaluate("[document.scrollingElement.scrollWidth, innerWidth]")
        assert width[0] <= width[1], width  # nothing sticks out sideways at phone width
