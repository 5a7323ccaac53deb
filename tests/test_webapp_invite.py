"""Joining a workspace from an invitation email in the web app (issue 11 item 9, issue 14).

The link is followed from a message that crossed real SMTP (aiosmtpd), opened in Chromium by a
person without an account: they sign up on the invitation page and land in the workspace. Bad
links (unknown, expired, another person's, already used) give a sentence and change nothing.
"""

from __future__ import annotations

import re
import uuid
from typing import Any

import pytest
from playwright.async_api import expect

from server.settings import Settings
from services.mailer import MAIL_JOB
from tests.browser_support import browser, new_page, sign_in
from tests.documents_support import create, make_workspace
from tests.mail_support import link_in, parsed, settle_other_mail, smtp_settings
from tests.ws_helpers import invite


@pytest.fixture
def settings(settings: Settings, smtp) -> Settings:
    return smtp_settings(settings, smtp)


async def mailed_link(ctx: Any, smtp: Any, to: str) -> str:
    """The invitation link in the mail the mail job sent to `to` (path only: the mail's host is
    the public URL, the browser opens the test node)."""
    assert (await ctx.scheduler.run_now(MAIL_JOB)).result >= 1
    [message] = [parsed(e) for e in smtp.inbox.messages if e.rcpt_tos == [to]]
    return link_in(message, "/invite/")


async def members(ctx: Any, workspace_id: str) -> list[tuple[str, str]]:
    rows = await ctx.db.fetch(
        "SELECT user_id::text, role FROM workspace_members WHERE workspace_id = $1"
        " ORDER BY user_id",
        workspace_id,
    )
    return [(row["user_id"], row["role"]) for row in rows]


async def test_a_new_person_joins_from_the_invitation_mail(
    chromium, ws_port, api, ctx, smtp, make_user
) -> None:
    await settle_other_mail(ctx)
    owner = await make_user("owner")
    workspace_id = await make_workspace(api, owner)
    await create(api, owner, workspace_id, title="Team handbook")
    email = f"newcomer-{uuid.uuid4().hex[:10]}@example.com"
    assert (await invite(api, workspace_id, owner, email, "member")).status == 201
    path = await mailed_link(ctx, smtp, email)
    base = f"http://127.0.0.1:{ws_port}"

    async with browser(chromium) as connected:
        page = await new_page(connected)
        await page.goto(base + path)
        await expect(page.get_by_role("heading", name="You've been invited")).to_be_visible()
        await page.get_by_role("tab", name="Create account").click()
        await page.get_by_label("Name", exact=True).fill("Nina Newcomer")
        await page.get_by_label("Email", exact=True).fill(email)
        await page.get_by_label("Password", exact=True).fill("a long enough password")
        await page.get_by_role("button", name="Create account").last.click()

        # Accepted, then opened: the workspace and its pages, with no step in between.
        await expect(page).to_have_url(re.compile(rf"/w/{workspace_id}$"))
        await expect(page.get_by_role("combobox", name="Workspace")).to_have_value(workspace_id)
        sidebar = page.get_by_role("navigation", name="Sidebar")
        await expect(sidebar.get_by_role("link", name="Team handbook")).to_be_visible()
        joined = await ctx.db.fetchrow(
            "SELECT u.id::text AS id, m.role FROM users u JOIN workspace_members m"
            " ON m.user_id = u.id AND m.workspace_id = $1 WHERE u.email = $2",
            workspace_id,
            email,
        )
        assert joined is not None and joined["role"] == "member"

        # The link again (single use): a sentence, and the membership is as it was.
        before = await members(ctx, workspace_id)
        await page.goto(base + path)
        await expect(page.get_by_role("alert")).to_have_text(
            "This invitation has already been used. If you accepted it, the workspace is in"
            " your list."
        )
        await page.get_by_role("button", name="Go to my workspaces").click()
        await expect(sidebar.get_by_role("link", name="Team handbook")).to_be_visible()
        assert await members(ctx, workspace_id) == before


async def test_bad_invitation_links_say_why_and_change_nothing(
    chromium, ws_port, api, ctx, smtp, make_user
) -> None:
    await settle_other_mail(ctx)
    owner, invitee, other = [await make_user(name) for name in ("owner", "invitee", "other")]
    workspace_id = await make_workspace(api, owner)
    expired = await invite(api, workspace_id, owner, invitee.email, "member")
    await ctx.db.execute(
        "UPDATE invitations SET expires_at = now() - interval '1 second' WHERE id = $1",
        expired.body["id"],
    )
    foreign = await invite(
        api, workspace_id, owner, f"x-{uuid.uuid4().hex[:8]}@example.com", "member"
    )
    before = await members(ctx, workspace_id)
    invitations_before = await ctx.db.fetch(
        "SELECT id, accepted_at, revoked_at FROM invitations WHERE workspace_id = $1 ORDER BY id",
        workspace_id,
    )
    base = f"http://127.0.0.1:{ws_port}"
    cases = [
        (f"/invite/{'x' * 43}", "This invitation link is not valid."),
        ("/invite/%ff%00<script>", "This invitation link is not valid."),
        (f"/invite/{expired.body['token']}", "This invitation has expired."),
    ]

    async with browser(chromium) as connected:
        page = await new_page(connected)
        await sign_in(page, base, invitee.email, invitee.password)
        for path, says in cases:
            await page.goto(base + path)
            await expect(page.get_by_role("alert")).to_contain_text(says)

        # Someone else's invitation: said so, with the way out (sign out, use the invited
        # address); the sign-in form then keeps the invitation page's notice.
        await page.goto(base + f"/invite/{foreign.body['token']}")
        await expect(page.get_by_role("alert")).to_contain_text(
            "This invitation was sent to a different email address"
        )
        await page.get_by_role("button", name="Sign out").click()
        await expect(page.get_by_role("heading", name="You've been invited")).to_be_visible()

        # Signed out, a garbage link shows the forms; signing in then says it is not valid.
        other_page = await new_page(connected)
        await other_page.goto(base + "/invite/not-a-token")
        await expect(other_page.get_by_role("heading", name="You've been invited")).to_be_visible()
        await other_page.get_by_label("Email", exact=True).fill(other.email)
        await other_page.get_by_label("Password", exact=True).fill(other.password)
        await other_page.get_by_role("button", name="Sign in", exact=True).last.click()
        await expect(other_page.get_by_role("alert")).to_contain_text(
            "This invitation link is not valid."
        )

    assert await members(ctx, workspace_id) == before
    assert (
        await ctx.db.fetch(
            "SELECT id, accepted_at, revoked_at FROM invitations WHERE workspace_id = $1"
            " ORDER BY id",
            workspace_id,
        )
        == invitations_before
    )
