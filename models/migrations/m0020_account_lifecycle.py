"""Account lifecycle: a session's User-Agent (the owner's session list), a deleted account."""

import peewee

from models.migrate import run_sql


def up(db: peewee.Database) -> None:
    run_sql(db, "ALTER TABLE token_families ADD COLUMN IF NOT EXISTS user_agent text")
    run_sql(db, "ALTER TABLE users ADD COLUMN IF NOT EXISTS deleted_at timestamptz")
