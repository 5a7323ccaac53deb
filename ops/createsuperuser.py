"""Create an instance admin: `collab createsuperuser`.

Non-interactive with `--email`/`--display-name` and the password in `COLLAB_SUPERUSER_PASSWORD`
(never a flag: it would show in `ps` and shell history); on a terminal, whatever is missing is
prompted for (the password twice, not echoed). Without a terminal a missing value is a usage error.
"""

from __future__ import annotations

import argparse
import getpass
import os
import sys
from dataclasses import asdict
from typing import Any

from ops._accounts import accounts_context
from ops._runtime import OpsError, add_common_arguments, fail, run_command
from server.settings import Settings
from services import user_admin
from services.passwords import MIN_PASSWORD_LENGTH, PasswordHashing

PASSWORD_ENV = "COLLAB_SUPERUSER_PASSWORD"
MAX_PASSWORD_LENGTH = 256


def configure_parser(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--email", default=os.environ.get("COLLAB_SUPERUSER_EMAIL"))
    parser.add_argument("--display-name", default=os.environ.get("COLLAB_SUPERUSER_NAME"))
    parser.add_argument("--no-input", action="store_true", help="never prompt, even on a terminal")
    add_common_arguments(parser)


def _ask(prompt: str, interactive: bool, name: str) -> str:
    if not interactive:
        raise OpsError(f"{name} is required (no terminal to prompt on)")
    return input(prompt).strip()


def collect(args: argparse.Namespace) -> tuple[str, str, str]:
    """(email, display name, password) from flags/env, prompting on a terminal for the rest."""
    interactive = sys.stdin.isatty() and not args.no_input
    email = (args.email or _ask("Email: ", interactive, "--email")).strip()
    name = (args.display_name or email.partition("@")[0]).strip()
    password = os.environ.get(PASSWORD_ENV, "")
    if not password:
        if not interactive:
            raise OpsError(f"{PASSWORD_ENV} is required (no terminal to prompt on)")
        password = getpass.getpass("Password: ")
        if getpass.getpass("Password (again): ") != password:
            raise OpsError("the passwords do not match")
    if "@" not in email or len(email) > 254:
        raise OpsError(f"email: not an email address: {email!r}")
    if not 1 <= len(name) <= 100:
        raise OpsError("display_name: 1 to 100 characters")
    if not MIN_PASSWORD_LENGTH <= len(password) <= MAX_PASSWORD_LENGTH:
        raise OpsError(f"password: {MIN_PASSWORD_LENGTH} to {MAX_PASSWORD_LENGTH} characters")
    return email, name, password


async def create(settings: Settings, values: tuple[str, str, str]) -> dict[str, Any]:
    email, name, password = values
    passwords = PasswordHashing(1, 1)
    try:
        async with accounts_context(settings) as ctx:
            created = await user_admin.create_superuser(ctx, passwords, email, password, name)
            return asdict(created)
    finally:
        await passwords.stop()


def run(args: argparse.Namespace) -> int:
    try:
        values = collect(args)
    except OpsError as err:
        return fail(err, as_json=args.json)
    return run_command(args, lambda settings: create(settings, values))
