"""Stored exports may show the document's comments as footnotes (`exports.comments`)."""

import peewee

from models.migrate import run_sql


def up(db: peewee.Database) -> None:
    run_sql(
        db, "ALTER TABLE exports ADD COLUMN IF NOT EXISTS comments boolean NOT NULL DEFAULT false"
    )
