"""Nested pages inherit privacy: `documents.is_private` null means "as my parent page" (a
top-level page with null is not private).

Until now `false` was only ever the default (no endpoint could set it), so every `false` becomes
null: pages follow their parent, also after a move, until someone sets their privacy."""

import peewee

from models.migrate import run_sql


def up(db: peewee.Database) -> None:
    run_sql(
        db,
        "ALTER TABLE documents ALTER COLUMN is_private DROP NOT NULL",
        "ALTER TABLE documents ALTER COLUMN is_private DROP DEFAULT",
        "UPDATE documents SET is_private = NULL WHERE NOT is_private",
    )
