"""The payload digest of each client operation id (a reused id with another payload is refused)."""

import peewee

from models.migrate import run_sql


def up(db: peewee.Database) -> None:
    run_sql(
        db,
        "ALTER TABLE document_operations ADD COLUMN IF NOT EXISTS payload_sha256 bytea",
    )
