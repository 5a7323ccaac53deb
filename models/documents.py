"""Documents and per-document grants (CRDT snapshots, versions and blocks: migration 0003)."""

from __future__ import annotations

import peewee

from models.base import BaseModel, timestamptz
from models.boards import RESOURCE_ROLES, Board
from models.users import User
from models.workspaces import Workspace, role_check


class Document(BaseModel):
    workspace = peewee.ForeignKeyField(Workspace, on_delete="CASCADE", index=True)
    board = peewee.ForeignKeyField(Board, null=True, on_delete="SET NULL", index=True)
    # Pages in pages: deleting a parent (hard) removes its sub-pages.
    parent = peewee.ForeignKeyField("self", null=True, on_delete="CASCADE", index=True)
    title = peewee.TextField(default="", constraints=[peewee.SQL("DEFAULT ''")])
    # null: as the parent page (a page inherits its parent's privacy unless it sets its own; a
    # top-level page with null is not private). Migration 0007.
    is_private = peewee.BooleanField(null=True)
    # The Y.XmlFragment holding the block tree; null: the `content_fragment` setting (0005).
    fragment = peewee.TextField(null=True)
    created_by = peewee.ForeignKeyField(
        User, column_name="created_by", null=True, on_delete="SET NULL", index=True
    )
    updated_at = timestamptz(default_now=True)
    deleted_at = timestamptz(null=True)

    class Meta:
        table_name = "documents"


class DocumentGrant(BaseModel):
    """An explicit grant on one document; overrides the inherited default in both directions."""

    document = peewee.ForeignKeyField(Document, on_delete="CASCADE", index=True)
    user = peewee.ForeignKeyField(User, on_delete="CASCADE", index=True)
    role = peewee.TextField(constraints=[role_check("role", RESOURCE_ROLES)])
    granted_by = peewee.ForeignKeyField(
        User,
        column_name="granted_by",
        null=True,
        on_delete="SET NULL",
        index=True,
        backref="document_grants_given",
    )

    class Meta:
        table_name = "document_grants"
        indexes = ((("document", "user"), True),)


DOCUMENT_HEADER_TABLES = [Document, DocumentGrant]


class DocumentSnapshot(peewee.Model):
    """The compacted CRDT state of a document: a Yjs v1 update covering stream seq ≤ `seq`.

    One row per document, only ever moved forward (`UPDATE … WHERE seq < $new`): a stale snapshot
    writer (lost lock, slow node) can never replace newer state with older.
    """

    document = peewee.ForeignKeyField(
        Document, primary_key=True, on_delete="CASCADE", column_name="document_id"
    )
    seq = peewee.BigIntegerField()
    state = peewee.BlobField()
    state_vector = peewee.BlobField()
    update_count = peewee.BigIntegerField(default=0, constraints=[peewee.SQL("DEFAULT 0")])
    updated_at = timestamptz(default_now=True)
    # The state is a `Doc`'s re-encoding (core/compaction.py), not merged updates.
    compact = peewee.BooleanField(default=False, constraints=[peewee.SQL("DEFAULT false")])

    class Meta:
        table_name = "document_snapshots"
        database = Document._meta.database


class DocumentVersion(BaseModel):
    """A point in a document's history: automatic (from snapshots) or named by a user."""

    document = peewee.ForeignKeyField(Document, on_delete="CASCADE", index=True)
    seq = peewee.BigIntegerField()
    state = peewee.BlobField()
    name = peewee.TextField(null=True)
    kind = peewee.TextField(constraints=[peewee.Check("kind IN ('auto', 'named', 'restore')")])
    created_by = peewee.ForeignKeyField(
        User, column_name="created_by", null=True, on_delete="SET NULL", index=True
    )

    class Meta:
        table_name = "document_versions"


class DocumentOperation(peewee.Model):
    """Durable client-message-id → stream seq map for server-minted updates (JSON envelope
    operations, restores, REST block writes). JetStream's `Nats-Msg-Id` dedupe forgets ids after
    its window and after purges; replaying such an update would apply it twice, so the map lives
    here as long as the document does."""

    document = peewee.ForeignKeyField(Document, on_delete="CASCADE", column_name="document_id")
    msg_id = peewee.TextField()
    seq = peewee.BigIntegerField()
    # SHA-256 of a client operation's payload: the same id with another payload is refused
    # (`id_reused`) instead of being acked as a duplicate and dropped (issue 17 item 6).
    payload_sha256 = peewee.BlobField(null=True)
    created_at = timestamptz(default_now=True)

    class Meta:
        table_name = "document_operations"
        database = Document._meta.database
        primary_key = peewee.CompositeKey("document", "msg_id")


DOCUMENT_STATE_TABLES = [DocumentSnapshot, DocumentVersion, DocumentOperation]
