"""Export files made in the background (`exports`): a document in one format, or a workspace as
a zip of Markdown files, kept for a limited time for the user who asked for it.

The file itself is a `bytea` in the row, not a file on a node's disk: any node serves the
download, whichever node's job rendered it. An expired export keeps its row (without the file),
so a late download gets 410 rather than 404.
"""

from __future__ import annotations

import peewee

from models.base import BaseModel, timestamptz
from models.documents import Document
from models.users import User
from models.workspaces import Workspace, role_check

PENDING = "pending"
READY = "ready"
FAILED = "failed"
EXPIRED = "expired"
EXPORT_STATES = (PENDING, READY, FAILED, EXPIRED)


class ExportRow(BaseModel):
    requested_by = peewee.ForeignKeyField(
        User, column_name="requested_by", on_delete="CASCADE", index=True
    )
    workspace = peewee.ForeignKeyField(Workspace, on_delete="CASCADE", index=True)
    # null: the whole workspace (a zip of Markdown files).
    document = peewee.ForeignKeyField(Document, null=True, on_delete="CASCADE", index=True)
    format = peewee.TextField()
    # The point exported: a version, else a stream seq pinned when the export was asked for.
    version_id = peewee.UUIDField(null=True)
    seq = peewee.BigIntegerField(null=True)
    # Comment threads as footnotes (migration 0022).
    comments = peewee.BooleanField(default=False, constraints=[peewee.SQL("DEFAULT false")])
    status = peewee.TextField(constraints=[role_check("status", EXPORT_STATES)])
    filename = peewee.TextField(null=True)
    content_type = peewee.TextField(null=True)
    body = peewee.BlobField(null=True)
    size_bytes = peewee.BigIntegerField(null=True)
    error = peewee.TextField(null=True)
    attempts = peewee.IntegerField(constraints=[peewee.SQL("DEFAULT 0")])
    finished_at = timestamptz(null=True)
    expires_at = timestamptz(null=True)

    class Meta:
        table_name = "exports"
        indexes = ((("status", "created_at"), False),)
