"""Single-use account tokens: password reset and email verification links.

Only a token's SHA-256 is stored (like invitations): a database leak reveals no usable link. The
raw token exists only in the email the mail job builds (`services/account_mail.py`), never in the
outbox or a log. `email` is the address the link was sent to: a token stops working if the
account's address changes, and a verification verifies exactly that address. Spent (`used_at`) and
expired rows are kept until the cleanup deletes them; issuing a new token of a purpose voids the
account's older unused ones, so only the newest link works.
"""

from __future__ import annotations

import peewee

from models.base import BaseModel, timestamptz
from models.users import User
from models.workspaces import role_check

PASSWORD_RESET = "password_reset"
EMAIL_VERIFICATION = "email_verification"
TOKEN_PURPOSES: tuple[str, ...] = (PASSWORD_RESET, EMAIL_VERIFICATION)


class AccountToken(BaseModel):
    user = peewee.ForeignKeyField(User, on_delete="CASCADE", index=True)
    purpose = peewee.TextField(constraints=[role_check("purpose", TOKEN_PURPOSES)])
    token_hash = peewee.TextField(unique=True)
    email = peewee.TextField()
    expires_at = timestamptz()
    used_at = timestamptz(null=True)

    class Meta:
        table_name = "account_tokens"


ACCOUNT_TOKEN_TABLES = [AccountToken]
