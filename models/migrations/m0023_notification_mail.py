"""The notification mail job scans pending notifications on an email channel, oldest first."""

import peewee

from models.migrate import run_sql


def up(db: peewee.Database) -> None:
    run_sql(
        db,
        "CREATE INDEX IF NOT EXISTS notifications_email_pending ON notifications (created_at, id)"
        " WHERE email_state IS NULL AND channel IN"
        " ('email_immediate', 'email_digest_hourly', 'email_digest_daily')",
    )
