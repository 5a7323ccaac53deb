"""Password reset and email verification: `account_tokens` (hashed, single use, expiring) and
`users.email_verified_at`."""

import peewee

from models.account_tokens import ACCOUNT_TOKEN_TABLES
from models.migrate import create_tables, run_sql


def up(db: peewee.Database) -> None:
    create_tables(db, ACCOUNT_TOKEN_TABLES)
    run_sql(db, "ALTER TABLE users ADD COLUMN IF NOT EXISTS email_verified_at timestamptz")
