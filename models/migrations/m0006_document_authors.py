"""Authors of document updates, kept after compaction (version authors and diffs)."""

import peewee

from models.document_content import DocumentAuthorSpan
from models.migrate import create_tables


def up(db: peewee.Database) -> None:
    create_tables(db, [DocumentAuthorSpan])
