"""Comments anchored to blocks with @mention autocomplete, and the inbox badge fed by /ws/inbox
(issue 14 item 1, the comments/notifications part), in two Chromium windows."""

from __future__ import annotations

import re

from playwright.async_api import expect

from tests.board_helpers import create_board, create_card, create_list
from tests.browser_support import browser, open_as, shared_workspace
from tests.documents_support import create


async def test_a_comment_with_a_mention_and_the_inbox_badge(
    chromium, ws_port, api, ctx, make_user
) -> None:
    workspace_id, (ann, bob) = await shared_workspace(api, ctx, make_user, "ann", "bob")
    doc = await create(api, ann, workspace_id, title="Budget")
    base = f"http://127.0.0.1:{ws_port}"
    path = f"/w/{workspace_id}/d/{doc['id']}"

    async with browser(chromium) as connected:
        page_a = await open_as(connected, base, ann, path)
        page_b = await open_as(connected, base, bob, path)
        await expect(page_b.get_by_test_id("inbox-button")).to_have_attribute("data-state", "live")
        await expect(page_b.get_by_test_id("inbox-badge")).to_have_count(0)

        # Bob has the comments open; they follow the document socket's comment events.
        await page_b.get_by_role("button", name="Comments").click()
        await expect(page_b.get_by_text("No open comments.")).to_be_visible()

        # Ann comments on the block her cursor is in, mentioning Bob through the autocomplete.
        await page_a.locator(".bn-editor").click()
        await page_a.keyboard.type("The budget needs a second look")
        await page_a.get_by_role("button", name="Comments").click()
        composer = page_a.get_by_label("New comment")
        await composer.press_sequentially("@Bo")
        options = page_a.get_by_role("listbox", name="Mention someone").get_by_role("option")
        await expect(options).to_have_text(["B Bob"])  # avatar initials + name
        await composer.press("Enter")
        await composer.press_sequentially("please check")
        await expect(composer).to_have_value("@Bob please check")
        await page_a.get_by_role("button", name="Comment", exact=True).click()
        thread = page_a.get_by_test_id("thread")
        await expect(thread).to_contain_text("“The budget needs a second look”")
        await expect(thread).to_contain_text("@Bob please check")

        # The mention lights Bob's inbox badge at once (the inbox socket); it is stored as a
        # mention (not as text).
        await expect(page_b.get_by_test_id("inbox-badge")).to_have_text("1")
        threads = await api.get(f"/api/v1/documents/{doc['id']}/threads/", token=bob.access_token)
        assert threads.status == 200, threads.body
        [stored] = threads.body["items"]
        assert stored["comments"][0]["mentions"] == [bob.id]

        # The thread appears in Bob's open panel, anchored to the block, without a reload; his
        # reply appears in Ann's the same way.
        bob_thread = page_b.get_by_test_id("thread")
        await expect(bob_thread).to_contain_text("“The budget needs a second look”")
        await expect(bob_thread).to_contain_text("@Bob please check")
        await bob_thread.get_by_label("Reply").fill("Looks fine to me")
        await bob_thread.get_by_role("button", name="Reply").click()
        await expect(bob_thread).to_contain_text("Looks fine to me")
        await expect(thread).to_contain_text("Looks fine to me")

        # The inbox lists it; opening it marks it read and the badge goes out.
        await page_b.get_by_test_id("inbox-button").click()
        inbox = page_b.get_by_role("dialog", name="Inbox")
        mention = inbox.get_by_role("button", name=re.compile("You were mentioned in a comment"))
        await expect(mention).to_contain_text("on “Budget”: @Bob please check")
        await mention.click()
        await expect(page_b.get_by_test_id("inbox-badge")).to_have_count(0)

        # Another notification (Ann assigns Bob a card) lights it again; "Mark all read" clears it.
        board = await create_board(api, ann, workspace_id, name="Money")
        todo = await create_list(api, ann, board["id"], "To do")
        await create_card(api, ann, todo["id"], "Check the budget", assignees=[bob.id])
        await expect(page_b.get_by_test_id("inbox-badge")).to_have_text("1")
        await page_b.get_by_test_id("inbox-button").click()
        await expect(inbox).to_contain_text("You were assigned “Check the budget” on Money")
        await inbox.get_by_role("button", name="Mark all read").click()
        await expect(page_b.get_by_test_id("inbox-badge")).to_have_count(0)
