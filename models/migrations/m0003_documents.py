"""Document CRDT snapshots, versions, the durable operation-id map, the blocks projection and
the snapshot job's compaction bookkeeping."""

import peewee

from models.document_content import DOCUMENT_CONTENT_TABLES
from models.documents import DOCUMENT_STATE_TABLES
from models.migrate import create_tables, run_sql


def up(db: peewee.Database) -> None:
    create_tables(db, DOCUMENT_STATE_TABLES + DOCUMENT_CONTENT_TABLES)
    run_sql(
        db,
        "CREATE INDEX IF NOT EXISTS document_versions_document_created"
        " ON document_versions (document_id, created_at DESC)",
        # Retention prunes automatic versions per document, newest first.
        "CREATE INDEX IF NOT EXISTS document_versions_auto"
        " ON document_versions (document_id, created_at DESC) WHERE kind = 'auto'",
        # One 'restore' version per published restore update: a retried restore finds it.
        "CREATE UNIQUE INDEX IF NOT EXISTS document_versions_restore_seq"
        " ON document_versions (document_id, seq) WHERE kind = 'restore'",
        # Children of a block in order; subtree queries; content search (jsonb_path_ops: @>).
        "CREATE INDEX IF NOT EXISTS blocks_parent_position"
        " ON blocks (document_id, parent_id, position)",
        "CREATE INDEX IF NOT EXISTS blocks_path ON blocks USING GIN (path)",
        "CREATE INDEX IF NOT EXISTS blocks_content ON blocks USING GIN (content jsonb_path_ops)",
        # Listing a page's sub-pages and a board's documents.
        "CREATE INDEX IF NOT EXISTS documents_parent_live"
        " ON documents (parent_id, created_at) WHERE deleted_at IS NULL",
    )
