"""`notifications.email_due_at`: a notification mail held back (suppression window, digest
period) is not looked at again before then, so held rows never crowd out the ones due now."""

import peewee

from models.migrate import run_sql


def up(db: peewee.Database) -> None:
    run_sql(db, "ALTER TABLE notifications ADD COLUMN IF NOT EXISTS email_due_at timestamptz")
