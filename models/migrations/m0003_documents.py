"""Document CRDT snapshots, versions and the durable operation-id map."""

import peewee

from models.documents import DOCUMENT_STATE_TABLES
from models.migrate import create_tables, run_sql


def up(db: peewee.Database) -> None:
    create_tables(db, DOCUMENT_STATE_TABLES)
    run_sql(
        db,
        "CREATE INDEX IF NOT EXISTS document_versions_document_created"
        " ON document_versions (document_id, created_at DESC)",
    )
