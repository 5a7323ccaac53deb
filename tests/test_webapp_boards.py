"""A board in two Chromium windows (issue 14 item 4, boards): drag and drop, live updates, a
stale move's conflict message and the `since` resume after a reconnect."""

from __future__ import annotations

import re
from typing import Any

from playwright.async_api import expect

from tests.board_helpers import create_board, create_card, create_list
from tests.browser_support import (
    SocketGate,
    browser,
    open_as,
    screenshot_path,
    shared_workspace,
)


def in_list(page: Any, list_name: str) -> Any:
    return page.get_by_role("region", name=f"List {list_name}")


def card_titles(page: Any, list_name: str) -> Any:
    return in_list(page, list_name).get_by_test_id("card")


async def test_cards_and_lists_move_live_and_a_stale_move_is_refused(
    chromium, ws_port, api, ctx, make_user
) -> None:
    workspace_id, (ann, bob) = await shared_workspace(api, ctx, make_user, "ann", "bob")
    board = await create_board(api, ann, workspace_id, name="Launch", color="#4f46e5")
    todo = await create_list(api, ann, board["id"], "To do")
    await create_list(api, ann, board["id"], "Doing")
    await create_list(api, ann, board["id"], "Done")
    for title in ("Write the spec", "Ship it", "Tell everyone"):
        await create_card(api, ann, todo["id"], title)
    base = f"http://127.0.0.1:{ws_port}"
    path = f"/w/{workspace_id}/b/{board['id']}"
    gate = SocketGate(r"/ws/boards/")

    async with browser(chromium) as connected:
        page_a = await open_as(connected, base, ann, path, "live")
        page_b = await open_as(connected, base, bob, path, "live", gate=gate)
        await expect(card_titles(page_b, "To do")).to_have_text(
            ["Write the spec", "Ship it", "Tell everyone"]
        )

        # Ann drags a card to the top of "Doing": Bob's window follows, through the board socket.
        await (
            card_titles(page_a, "To do")
            .filter(has_text="Write the spec")
            .drag_to(in_list(page_a, "Doing").get_by_role("heading"))
        )
        await expect(card_titles(page_b, "Doing")).to_have_text(["Write the spec"])
        await expect(card_titles(page_b, "To do")).to_have_text(["Ship it", "Tell everyone"])
        # ... and a list: "Done" dragged onto "To do" goes first, for both.
        await (
            in_list(page_a, "Done")
            .get_by_role("heading")
            .drag_to(in_list(page_a, "To do").get_by_role("heading"))
        )
        for page in (page_a, page_b):
            await expect(page.locator("section.list h3")).to_have_text(
                [re.compile("^Done"), re.compile("^To do"), re.compile("^Doing")]
            )
        await page_a.screenshot(path=screenshot_path("board.png"))

        # Keyboard: Alt+ArrowRight moves the focused card to the next list ("To do" → "Doing").
        await card_titles(page_a, "To do").filter(has_text="Tell everyone").focus()
        await page_a.keyboard.press("Alt+ArrowRight")
        await expect(card_titles(page_b, "Doing")).to_have_text(["Tell everyone", "Write the spec"])
        await page_a.keyboard.press("Alt+ArrowLeft")  # and back to the top of "To do", focused
        await expect(card_titles(page_b, "To do")).to_have_text(["Tell everyone", "Ship it"])

        # Bob opens a card (Enter on it): Ann sees him on it; his comment and description reach
        # her when she opens it.
        await card_titles(page_b, "Doing").filter(has_text="Write the spec").focus()
        await page_b.keyboard.press("Enter")
        card_b = page_b.get_by_role("dialog", name="Card Write the spec")
        await expect(
            card_titles(page_a, "Doing").filter(has_text="Write the spec").get_by_label("Bob")
        ).to_be_visible()
        await card_b.get_by_label("Description").fill("One page, by Friday")
        await card_b.get_by_role("button", name="Save card").click()
        await card_b.get_by_label("New card comment").fill("Draft is in the shared folder")
        await card_b.get_by_role("button", name="Comment", exact=True).click()
        await expect(card_b.get_by_test_id("thread")).to_contain_text(
            "Draft is in the shared folder"
        )
        await card_b.get_by_role("button", name="Close card").click()
        await expect(
            card_titles(page_a, "Doing").filter(has_text="Write the spec").get_by_label("Bob")
        ).to_have_count(0)
        await card_titles(page_a, "Doing").filter(has_text="Write the spec").click()
        card_a = page_a.get_by_role("dialog", name="Card Write the spec")
        await expect(card_a.get_by_label("Description")).to_have_value("One page, by Friday")
        await expect(card_a.get_by_test_id("thread")).to_contain_text(
            "Draft is in the shared folder"
        )
        await page_a.keyboard.press("Escape")
        await expect(card_a).to_be_hidden()

        # Bob's view goes stale (frames held); Ann moves "Ship it"; Bob then moves his stale
        # copy: If-Match carries the version he saw, the server refuses, the app says so and
        # shows the card where it really is.
        gate.holding = True
        await (
            card_titles(page_a, "To do")
            .filter(has_text="Ship it")
            .drag_to(in_list(page_a, "Done").get_by_role("heading"))
        )
        await expect(card_titles(page_a, "Done")).to_have_text(["Ship it"])
        await expect(card_titles(page_b, "To do")).to_have_text(["Tell everyone", "Ship it"])
        await (
            card_titles(page_b, "To do")
            .filter(has_text="Ship it")
            .drag_to(in_list(page_b, "Doing").get_by_role("heading"))
        )
        notice = page_b.get_by_test_id("board-notice")
        await expect(notice).to_contain_text("was changed by someone else")
        await expect(card_titles(page_b, "Done")).to_have_text(["Ship it"])

        # Ann keeps working while Bob's frames are held; then Bob's socket drops. The app
        # reconnects with ?since=<last seq it applied> and catches up without a reload.
        await (
            card_titles(page_a, "To do")
            .filter(has_text="Tell everyone")
            .drag_to(in_list(page_a, "Doing").get_by_role("heading"))
        )
        await expect(card_titles(page_a, "Doing")).to_have_text(["Tell everyone", "Write the spec"])
        gate.holding = False
        await gate.routes[-1].close(code=1001, reason="test: node going away")
        await expect(card_titles(page_b, "Doing")).to_have_text(["Tell everyone", "Write the spec"])
        await expect(page_b.get_by_test_id("connection")).to_have_attribute("data-state", "live")
        assert len(gate.urls) == 2
        assert re.search(r"[?&]since=\d+", gate.urls[1]), gate.urls
        assert int(re.search(r"since=(\d+)", gate.urls[1]).group(1)) > int(  # type: ignore[union-attr]
            re.search(r"since=(\d+)", gate.urls[0]).group(1)  # type: ignore[union-attr]
        )
