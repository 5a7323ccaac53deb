"""Workspaces, members, invitations, outbox; board and document headers with their grants."""

import peewee

from models.boards import BOARD_HEADER_TABLES
from models.documents import DOCUMENT_HEADER_TABLES
from models.migrate import create_tables, run_sql
from models.workspaces import WORKSPACE_TABLES


def up(db: peewee.Database) -> None:
    create_tables(db, WORKSPACE_TABLES + BOARD_HEADER_TABLES + DOCUMENT_HEADER_TABLES)
    run_sql(
        db,
        "CREATE UNIQUE INDEX IF NOT EXISTS workspaces_slug_lower_key ON workspaces (lower(slug))",
        # One pending invitation per address and workspace.
        "CREATE UNIQUE INDEX IF NOT EXISTS invitations_pending_email_key"
        " ON invitations (workspace_id, lower(email))"
        " WHERE accepted_at IS NULL AND revoked_at IS NULL",
        "CREATE INDEX IF NOT EXISTS outbox_pending ON outbox (available_at)"
        " WHERE processed_at IS NULL",
        "CREATE INDEX IF NOT EXISTS boards_workspace_live ON boards (workspace_id, created_at)"
        " WHERE deleted_at IS NULL",
        "CREATE INDEX IF NOT EXISTS documents_workspace_live"
        " ON documents (workspace_id, created_at) WHERE deleted_at IS NULL",
    )
