"""`document_snapshots.compact`: the state is a `Doc`'s re-encoding (core/compaction.py), so a
room or the next snapshot can re-encode later entries onto it without loading a merged state."""

import peewee

from models.migrate import run_sql


def up(db: peewee.Database) -> None:
    run_sql(
        db,
        "ALTER TABLE document_snapshots ADD COLUMN IF NOT EXISTS compact boolean"
        " NOT NULL DEFAULT false",
    )
