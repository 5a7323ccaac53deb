"""The app from a second origin (CORS + the WebSocket origin allowlist) and what a person sees
when their access ends while the app is open (issue 14 items 2 and 4)."""

from __future__ import annotations

import dataclasses
import socket
from collections.abc import Iterator

import pytest
import tornado.httpserver
import tornado.netutil
import tornado.web
from playwright.async_api import expect

from handlers import webapp
from server.settings import Settings
from tests.board_helpers import create_board, create_list
from tests.browser_support import browser, open_as, shared_workspace
from tests.documents_support import create


@pytest.fixture
def second_origin() -> Iterator[tuple[socket.socket, str]]:
    """A listening socket for the app's second origin (another port is another origin)."""
    [sock] = tornado.netutil.bind_sockets(0, "127.0.0.1")
    yield sock, f"http://127.0.0.1:{sock.getsockname()[1]}"
    sock.close()


@pytest.fixture
def settings(settings: Settings, second_origin: tuple[socket.socket, str]) -> Settings:
    """The node allows the second origin, as README "Web app" tells an operator to do."""
    origin = second_origin[1]
    return dataclasses.replace(settings, cors_origins=(origin,), ws_allowed_origins=(origin,))


@pytest.fixture
def static_app(io_loop, second_origin: tuple[socket.socket, str]) -> Iterator[str]:  # type: ignore[no-untyped-def]
    """The same built bundle served by a plain static server on the second origin."""
    server = tornado.httpserver.HTTPServer(tornado.web.Application(webapp.url_specs()))
    server.add_sockets([second_origin[0]])
    yield second_origin[1]
    server.stop()


async def test_the_app_works_from_a_second_origin(
    chromium, ws_port, api, ctx, make_user, static_app
) -> None:
    workspace_id, (ann, bob) = await shared_workspace(api, ctx, make_user, "ann", "bob")
    doc = await create(api, ann, workspace_id, title="Cross-origin notes")
    api_base = f"http://127.0.0.1:{ws_port}"
    path = f"/w/{workspace_id}/d/{doc['id']}"

    async with browser(chromium) as connected:
        remote = await open_as(
            connected,
            static_app,
            ann,
            path,
            init_script=f"window.COLLAB_API_BASE = {api_base!r}",
        )
        assert remote.url.startswith(static_app)
        local = await open_as(connected, api_base, bob, path)

        await remote.locator(".bn-editor").click()
        # A write with a preflight (PATCH + Authorization) works cross-origin too: the title.
        async with remote.expect_response(f"{api_base}/api/v1/documents/{doc['id']}/") as saved:
            await remote.get_by_label("Page title").fill("Renamed from afar")
            await remote.keyboard.press("Enter")
        assert (await saved.value).ok
        await remote.locator(".bn-editor").click()
        await remote.keyboard.type("Typed on another origin")
        await expect(local.locator(".bn-editor")).to_contain_text("Typed on another origin")


async def test_revoked_access_is_shown(chromium, ws_port, api, ctx, make_user) -> None:
    workspace_id, (ann, bob, cy) = await shared_workspace(api, ctx, make_user, "ann", "bob", "cy")
    doc = await create(api, ann, workspace_id, title="Plans")
    board = await create_board(api, ann, workspace_id, name="Plans board")
    await create_list(api, ann, board["id"], "To do")
    base = f"http://127.0.0.1:{ws_port}"

    async with browser(chromium) as connected:
        # Bob may only view this page (a grant narrows a member): the editor is read-only.
        granted = await api.put(
            f"/api/v1/documents/{doc['id']}/grants/{bob.id}/",
            {"role": "viewer"},
            token=ann.access_token,
        )
        assert granted.status == 200, granted.body
        bob_page = await open_as(connected, base, bob, f"/w/{workspace_id}/d/{doc['id']}")
        await expect(bob_page.get_by_test_id("read-only")).to_be_visible()
        await expect(bob_page.locator(".bn-editor")).to_have_attribute("contenteditable", "false")
        cy_page = await open_as(connected, base, cy, f"/w/{workspace_id}/b/{board['id']}", "live")

        # Cy is removed from the workspace: the open board says access is lost (4403).
        removed = await api.delete(
            f"/api/v1/workspaces/{workspace_id}/members/{cy.id}/", token=ann.access_token
        )
        assert removed.status == 204, removed.body
        await expect(cy_page.get_by_test_id("access-lost")).to_be_visible()
        await expect(cy_page.get_by_test_id("connection")).to_have_attribute(
            "data-state", "forbidden"
        )

        # Bob's password is changed elsewhere: every session is revoked, his socket closes 4401,
        # the app's one refresh fails and it shows the sign-in screen with the reason.
        changed = await api.patch(
            "/api/v1/auth/me/",
            {"current_password": bob.password, "new_password": "a brand new password"},
            token=bob.access_token,
        )
        assert changed.status == 200, changed.body
        await expect(bob_page.get_by_test_id("session-ended")).to_be_visible()
        await expect(bob_page.get_by_label("Password", exact=True)).to_be_visible()
        assert await bob_page.evaluate("localStorage.getItem('collab.session')") is None
