"""Users, login sessions (token families), refresh tokens and the durable access-token denylist."""

import peewee

from models.migrate import create_tables, run_sql
from models.users import USER_TABLES


def up(db: peewee.Database) -> None:
    create_tables(db, USER_TABLES)
    run_sql(
        db,
        "CREATE UNIQUE INDEX IF NOT EXISTS users_email_lower_key ON users (lower(email))",
        "CREATE INDEX IF NOT EXISTS refresh_tokens_expires_at ON refresh_tokens (expires_at)",
        "CREATE INDEX IF NOT EXISTS revoked_access_tokens_expires_at"
        " ON revoked_access_tokens (expires_at)",
    )
