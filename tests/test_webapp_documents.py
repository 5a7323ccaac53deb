"""Two people edit one page in two Chromium windows (issue 14 item 4, documents).

Everything goes through the app in the browser — the BlockNote editor, the stock y-websocket
provider, the document socket — except what another client would do (a REST block edit).
"""

from __future__ import annotations

from typing import Any

from playwright.async_api import expect

from tests.browser_support import (
    TIMEOUT_MS,
    SocketGate,
    browser,
    open_as,
    screenshot_path,
    shared_workspace,
)
from tests.documents_support import create


def editor(page: Any) -> Any:
    return page.locator(".bn-editor").first


#: The editor's text without the other people's cursor labels (inline widgets in the DOM).
_TEXT = """() => {
  const copy = document.querySelector('.bn-editor').cloneNode(true)
  copy.querySelectorAll('.bn-collaboration-cursor__base').forEach((c) => c.remove())
  return copy.innerText.replace(/\\u2060/g, '')
}"""
#: Whether that text has `text` (`present`) or lacks it. A function with an argument, not an
#: expression: Playwright would eval an expression in the page, which the app's CSP forbids.
_HAS_TEXT = f"([text, present]) => ({_TEXT})().includes(text) === present"


async def text_of(page: Any) -> str:
    return str(await page.evaluate(_TEXT))


async def wait_text(page: Any, text: str, *, present: bool = True) -> None:
    """Wait (on the page's own animation frames) until the editor's text has / lacks `text`."""
    await page.wait_for_function(_HAS_TEXT, arg=[text, present], timeout=TIMEOUT_MS)


async def test_two_people_edit_one_page_and_restore_a_version(
    chromium, ws_port, api, ctx, make_user
) -> None:
    workspace_id, (ann, bob) = await shared_workspace(api, ctx, make_user, "ann", "bob")
    doc = await create(api, ann, workspace_id, title="Launch plan")
    base = f"http://127.0.0.1:{ws_port}"
    path = f"/w/{workspace_id}/d/{doc['id']}"

    async with browser(chromium) as connected:
        page_a = await open_as(connected, base, ann, path)
        gate = SocketGate(r"/ws/documents/")
        page_b = await open_as(connected, base, bob, path, gate=gate)
        # Each sees both people on the page (awareness), by name.
        for page in (page_a, page_b):
            presence = page.get_by_test_id("presence")
            await expect(presence.locator(".avatar")).to_have_count(2)

        await editor(page_a).click()
        await page_a.keyboard.type("Hello from Ann.")
        await expect(editor(page_b)).to_contain_text("Hello from Ann.")
        await editor(page_b).get_by_text("Hello from Ann.").click()
        await page_b.keyboard.press("End")
        await page_b.keyboard.type(" Bob agrees.")
        # Both converge on the same text, each sees the other's named cursor.
        for page in (page_a, page_b):
            await wait_text(page, "Hello from Ann. Bob agrees.")
        assert await text_of(page_a) == await text_of(page_b)
        for page, other in ((page_a, "Bob"), (page_b, "Ann")):
            label = page.locator(".bn-collaboration-cursor__label")
            await expect(label).to_have_text(other)
            box = await label.bounding_box()
            assert box and box["width"] > 15, box  # the name is shown, not a 4 px stub

        # A block written over REST (another client, an integration) appears in open editors.
        added = await api.post(
            f"/api/v1/documents/{doc['id']}/blocks/",
            {"block": {"type": "heading", "props": {"level": 2}, "content": "Added over REST"}},
            token=bob.access_token,
        )
        assert added.status == 201, added.body
        for page in (page_a, page_b):
            await expect(
                editor(page).get_by_role("heading", name="Added over REST")
            ).to_be_visible()
        await page_a.screenshot(path=screenshot_path("editor.png"))

        # Name a version in Ann's history panel, keep typing, restore it: both editors go back.
        await page_a.get_by_role("button", name="History").click()
        await page_a.get_by_label("Version name").fill("Before the draft")
        await page_a.get_by_role("button", name="Save", exact=True).click()
        version = page_a.get_by_role("button", name="Before the draft")
        await version.wait_for()
        await editor(page_b).click()
        await page_b.keyboard.press("Control+End")
        await page_b.keyboard.press("Enter")
        await page_b.keyboard.type("A rough draft to undo")
        await wait_text(page_a, "A rough draft to undo")

        await version.click()
        preview = page_a.get_by_test_id("version-preview")
        await expect(preview).to_contain_text("Hello from Ann. Bob agrees.")
        await expect(preview).not_to_contain_text("A rough draft to undo")
        await preview.get_by_role("button", name="Restore this version").click()
        await expect(preview.get_by_role("status")).to_contain_text("Restored")
        for page in (page_a, page_b):
            await wait_text(page, "A rough draft to undo", present=False)
            assert "Hello from Ann. Bob agrees." in await text_of(page)
            assert "Added over REST" in await text_of(page)
        assert await text_of(page_a) == await text_of(page_b)

        # Bob loses the connection: the app says it is reconnecting, keeps his typing, and
        # sends it when the server is reachable again.
        gate.offline = True
        await gate.routes[-1].close(code=1001, reason="test: connection lost")
        await expect(page_b.get_by_test_id("connection")).to_have_attribute(
            "data-state", "reconnecting"
        )
        await expect(page_b.get_by_test_id("connection")).to_contain_text("Reconnecting")
        await editor(page_b).get_by_text("Added over REST").click()
        await page_b.keyboard.press("End")
        await page_b.keyboard.type(" (typed offline)")
        gate.offline = False
        await expect(page_b.get_by_test_id("connection")).to_have_attribute(
            "data-state", "connected"
        )
        await wait_text(page_a, "Added over REST (typed offline)")
