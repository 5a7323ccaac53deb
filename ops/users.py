"""Instance accounts: `collab users list|deactivate|activate|set-admin`.

`deactivate` locks the account out everywhere at once: login refused, refresh refused, every
access token void, open sockets closed (`services/user_admin.py`). Users are named by id or email.
"""

from __future__ import annotations

import argparse
from dataclasses import asdict
from typing import Any

from ops._accounts import accounts_context
from ops._runtime import add_common_arguments, run_command
from server.settings import Settings
from services import user_admin

LIST_LIMIT_MAX = 1000


def _limit(value: str) -> int:
    try:
        limit = int(value)
    except ValueError as err:
        raise argparse.ArgumentTypeError(f"not a number: {value!r}") from err
    if not 1 <= limit <= LIST_LIMIT_MAX:
        raise argparse.ArgumentTypeError(f"--limit must be 1..{LIST_LIMIT_MAX}")
    return limit


def configure_parser(parser: argparse.ArgumentParser) -> None:
    actions = parser.add_subparsers(dest="action", required=True)
    listing = actions.add_parser("list", help="accounts in email order")
    listing.add_argument("--limit", type=_limit, default=100)
    listing.add_argument("--after", default="", help="the last email of the previous page")
    add_common_arguments(listing)
    for name, help_text in (
        ("deactivate", "lock the account out and revoke every session"),
        ("activate", "allow logins again (old tokens stay void)"),
    ):
        action = actions.add_parser(name, help=help_text)
        action.add_argument("user", help="user id or email")
        add_common_arguments(action)
    admin = actions.add_parser("set-admin", help="grant or remove the instance-admin flag")
    admin.add_argument("user", help="user id or email")
    admin.add_argument("--off", action="store_true", help="remove the flag instead")
    add_common_arguments(admin)


async def users(settings: Settings, args: argparse.Namespace) -> Any:
    """The command's JSON payload: the account(s) as dicts."""
    async with accounts_context(settings) as ctx:
        if args.action == "list":
            found = await user_admin.list_users(ctx.db, limit=args.limit, after_email=args.after)
            return [asdict(user) for user in found]
        if args.action == "deactivate":
            return asdict(await user_admin.deactivate(ctx, args.user))
        if args.action == "activate":
            return asdict(await user_admin.activate(ctx, args.user))
        return asdict(await user_admin.set_admin(ctx, args.user, not args.off))


def render(payload: Any) -> str:
    rows = payload if isinstance(payload, list) else [payload]
    return "\n".join(
        f"{row['id']}  {row['email']:32} {'active' if row['is_active'] else 'INACTIVE':8}"
        f" {'admin' if row['is_admin'] else ''}".rstrip()
        for row in rows
    )


def run(args: argparse.Namespace) -> int:
    return run_command(args, lambda settings: users(settings, args), render=render)
