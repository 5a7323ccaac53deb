"""Postgres views of a document's CRDT content: the blocks projection and compaction bookkeeping.

Neither is a source of truth. The CRDT doc (snapshot + JetStream log) is the content; `blocks` is a
query-friendly projection of it, rebuilt at snapshot time and after REST writes; `document_compactions`
remembers what the snapshot job did last so the next run can find dirty documents cheaply and finish
a purge a crash interrupted.
"""

from __future__ import annotations

import peewee
from playhouse.postgres_ext import ArrayField, BinaryJSONField

from models.base import timestamptz
from models.documents import Document


class Block(peewee.Model):
    """One block of the document's block tree (services/doc_content.py), replaced as a whole
    per document whenever the projection moves to a newer stream sequence."""

    document = peewee.ForeignKeyField(Document, on_delete="CASCADE", column_name="document_id")
    # Block ids are chosen by editors (any string), not UUIDs.
    block_id = peewee.TextField()
    parent_id = peewee.TextField(null=True)
    position = peewee.IntegerField()
    depth = peewee.IntegerField()
    # Materialized path: ids from the top-level ancestor down to this block. A subtree query is
    # `path @> ARRAY[$id]` (GIN index), which works for any id string (no separator to escape).
    path = ArrayField(peewee.TextField, index=False)
    type = peewee.TextField()
    content = BinaryJSONField(index=False)
    # The block's own plain text (inline content, table cells): for search (migration 0005).
    text = peewee.TextField(default="", constraints=[peewee.SQL("DEFAULT ''")])

    class Meta:
        table_name = "blocks"
        database = Document._meta.database
        primary_key = peewee.CompositeKey("document", "block_id")


class DocumentProjection(peewee.Model):
    """The stream sequence the `blocks` rows of a document reflect; moved forward only, so a slow
    writer with an older state never replaces a newer projection."""

    document = peewee.ForeignKeyField(
        Document, primary_key=True, on_delete="CASCADE", column_name="document_id"
    )
    seq = peewee.BigIntegerField()
    updated_at = timestamptz(default_now=True)

    class Meta:
        table_name = "document_projections"
        database = Document._meta.database


class DocumentCompaction(peewee.Model):
    """What the last snapshot of a document covered and what it purged.

    After a snapshot at `snapshot_seq` (previous one at `prev_seq`) the purge keeps one snapshot of
    overlap: the stream then holds exactly the `overlap_msgs` updates in (prev_seq, snapshot_seq]
    plus whatever came later. So `stream messages of the subject - overlap_msgs` is the number of
    updates no snapshot covers yet, computed for every document from one JetStream call.
    `purged_through < prev_seq` means the purge after the commit did not happen (crash, NATS down);
    the next run finishes it.
    """

    document = peewee.ForeignKeyField(
        Document, primary_key=True, on_delete="CASCADE", column_name="document_id"
    )
    snapshot_seq = peewee.BigIntegerField()
    prev_seq = peewee.BigIntegerField()
    overlap_msgs = peewee.BigIntegerField()
    purged_through = peewee.BigIntegerField(default=0, constraints=[peewee.SQL("DEFAULT 0")])
    updated_at = timestamptz(default_now=True)

    class Meta:
        table_name = "document_compactions"
        database = Document._meta.database


class DocumentAuthorSpan(peewee.Model):
    """Who wrote a document's updates, kept after compaction purges the log: one row per user
    per snapshot batch, with the first and last stream seq of that user's updates in the batch
    (taken from the `Collab-User` header of each log entry before the purge). Version authors
    and "edited since" are answered from these spans plus the log after the last snapshot.
    `user_id` is text: the header is whatever the writer sent (server writes carry the caller)."""

    document = peewee.ForeignKeyField(Document, on_delete="CASCADE", column_name="document_id")
    user_id = peewee.TextField()
    from_seq = peewee.BigIntegerField()
    to_seq = peewee.BigIntegerField()

    class Meta:
        table_name = "document_author_spans"
        database = Document._meta.database
        indexes = ((("document", "from_seq"), False),)


DOCUMENT_CONTENT_TABLES = [Block, DocumentProjection, DocumentCompaction]
