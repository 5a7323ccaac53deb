"""Instance admins: a flag on users (`collab createsuperuser`, `collab users set-admin`)."""

import peewee

from models.migrate import run_sql


def up(db: peewee.Database) -> None:
    run_sql(
        db, "ALTER TABLE users ADD COLUMN IF NOT EXISTS is_admin boolean NOT NULL DEFAULT false"
    )
