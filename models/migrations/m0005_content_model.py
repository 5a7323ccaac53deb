"""The block tree in a Y.XmlFragment: a document names its fragment, blocks keep plain text."""

import peewee

from models.migrate import run_sql


def up(db: peewee.Database) -> None:
    run_sql(
        db,
        "ALTER TABLE documents ADD COLUMN IF NOT EXISTS fragment text",
        "ALTER TABLE blocks ADD COLUMN IF NOT EXISTS text text NOT NULL DEFAULT ''",
    )
