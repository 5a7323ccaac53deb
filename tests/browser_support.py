"""Real Chromium for the web app's end-to-end tests (tests/test_webapp_*.py).

Debian's `chromium` (`apt-get install -y chromium`; `.ci/run` installs it) is started once per
test module with a DevTools port; each test connects to it with Playwright's async API on its own
event loop (pytest-tornasync gives every test a fresh IOLoop, and Playwright objects are bound to
the loop that made them) and opens one browser context per user — isolated storage, like two
people on two machines. Playwright's own browser download is never used.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import subprocess
import tempfile
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest
from playwright.async_api import expect

from tests.documents_support import join, make_workspace

CHROMIUM = os.environ.get("COLLAB_CHROMIUM") or shutil.which("chromium") or "/usr/bin/chromium"
#: Where the README's screenshots are refreshed from: `COLLAB_SCREENSHOT_DIR=docs/screenshots pytest
#: tests/test_webapp_documents.py tests/test_webapp_boards.py`. By default a run still takes them
#: (a broken page fails the screenshot too) but into a temp dir, so a test run leaves the checkout clean.
SCREENSHOTS = Path(
    os.environ.get("COLLAB_SCREENSHOT_DIR")
    or Path(tempfile.gettempdir()) / f"collab-screenshots-{os.getuid()}"
)
#: Chromium's first line on stderr once the DevTools endpoint listens (a cold start takes ~1 s).
_LISTENING = re.compile(r"DevTools listening on (ws://\S+)")
#: Long enough for a loaded 2-core CI machine; every wait in these tests is on an event.
TIMEOUT_MS = 20_000
expect.set_options(timeout=TIMEOUT_MS)

_FLAGS = [
    "--headless",
    "--no-sandbox",  # root in CI containers: the sandbox needs user namespaces it does not have
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
    "--remote-debugging-port=0",
    "--remote-debugging-address=127.0.0.1",
]


@contextlib.contextmanager
def launch_chromium() -> Iterator[str]:
    """One Chromium process (the `chromium` fixture: one per module); its DevTools endpoint."""
    # Failing, not skipping (like nginx and npm): a suite that skips its browser tests would
    # pass on a machine where nobody ever opened the app.
    if not Path(CHROMIUM).exists():
        pytest.fail("Chromium is not installed: apt-get install -y chromium (.ci/run does)")
    with tempfile.TemporaryDirectory(prefix="collab-chromium-") as profile:
        process = subprocess.Popen(
            [CHROMIUM, *_FLAGS, f"--user-data-dir={profile}", "about:blank"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )
        try:
            endpoint = _endpoint(process)
            yield endpoint
        finally:
            process.terminate()
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
            if process.stderr:
                process.stderr.close()


def _endpoint(process: subprocess.Popen[str]) -> str:
    """Read stderr until Chromium announces its endpoint (or exits)."""
    assert process.stderr is not None
    seen = []
    for line in process.stderr:
        seen.append(line)
        match = _LISTENING.search(line)
        if match:
            # Keep draining stderr so Chromium never blocks on a full pipe.
            _drain(process)
            return match.group(1)
    raise RuntimeError(
        f"Chromium exited ({process.wait()}) before listening: {''.join(seen)[-2000:]}"
    )


def _drain(process: subprocess.Popen[str]) -> None:
    import threading

    stream = process.stderr
    assert stream is not None
    threading.Thread(target=lambda: [None for _ in stream], daemon=True).start()


@contextlib.asynccontextmanager
async def browser(endpoint: str) -> AsyncIterator[Any]:
    """A Playwright connection to the module's Chromium; contexts made on it close with it."""
    from playwright.async_api import async_playwright

    async with async_playwright() as playwright:
        connected = await playwright.chromium.connect_over_cdp(endpoint)
        try:
            yield connected
        finally:
            for context in connected.contexts[1:]:  # [0] is Chromium's default context
                await context.close()
            await connected.close()


async def new_page(
    connected: Any,
    *,
    width: int = 1280,
    height: int = 800,
    init_script: str | None = None,
    gate: SocketGate | None = None,
) -> Any:
    """A page in a fresh context (its own storage: another person); `gate` routes its sockets."""
    context = await connected.new_context(viewport={"width": width, "height": height})
    context.set_default_timeout(TIMEOUT_MS)
    if init_script:
        await context.add_init_script(init_script)
    if gate:
        await context.route_web_socket(gate.pattern, gate.route)
    return await context.new_page()


class SocketGate:
    """A page's sockets matching `pattern` run through Playwright's WebSocket route, so a test
    can hold the server's frames (the page's view goes stale), drop a connection, or refuse new
    ones (offline: the app must show it is reconnecting, then catch up)."""

    def __init__(self, pattern: str) -> None:
        self.pattern = re.compile(pattern)
        self.holding = False
        self.offline = False
        self.urls: list[str] = []
        self.routes: list[Any] = []

    async def route(self, ws: Any) -> None:
        self.urls.append(ws.url)
        if self.offline:
            await ws.close(code=1013, reason="test: offline")
            return
        self.routes.append(ws)
        server = ws.connect_to_server()
        server.on_message(lambda message: None if self.holding else ws.send(message))


async def sign_in(page: Any, base_url: str, email: str, password: str, path: str = "/") -> None:
    """Sign in through the form, as a person would, and wait for the signed-in frame."""
    await page.goto(base_url + path)
    await page.get_by_label("Email", exact=True).fill(email)
    await page.get_by_label("Password", exact=True).fill(password)
    await page.get_by_role("button", name="Sign in", exact=True).last.click()
    await page.get_by_role("button", name="Sign out").wait_for()


async def shared_workspace(
    api: Any, ctx: Any, make_user: Any, *names: str
) -> tuple[str, list[Any]]:
    """Users by name, the first one owning a workspace the others are members of."""
    users = [await make_user(name) for name in names]
    workspace_id = await make_workspace(api, users[0])
    for user in users[1:]:
        await join(ctx, workspace_id, user, "member")
    return workspace_id, users


async def open_as(
    connected: Any, base_url: str, user: Any, path: str, state: str = "connected", **page: Any
) -> Any:
    """A signed-in page of `user` at `path`, once its socket reports `state`."""
    opened = await new_page(connected, **page)
    await sign_in(opened, base_url, user.email, user.password, path)
    await expect(opened.get_by_test_id("connection")).to_have_attribute("data-state", state)
    return opened


def screenshot_path(name: str) -> Path:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    return SCREENSHOTS / name
