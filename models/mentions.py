"""Mentions found in document bodies: which (block, user) pairs were seen, and how far each
document's log has been scanned for new ones (services/body_mentions.py).

A row is the memory that makes a mention notify once: it is inserted the first time its (document,
block, user) is seen and never deleted while the document exists, so retyping, moving, undoing or
restoring the same mention in the same block finds it and stays silent, on every node and after
restarts. `outcome` says what the insert did: `notified` (the user was told), `no_access` (they
may not view the document: the author was told that, nothing else), `silent` (the author mentioned
themselves, or the mention was there before detection started, or came from a restore or a
duplicated page, or its author is unknown because the log it arrived in was compacted first).
"""

from __future__ import annotations

import peewee

from models.base import timestamptz
from models.documents import Document
from models.users import User
from models.workspaces import role_check

NOTIFIED = "notified"
NO_ACCESS = "no_access"
SILENT = "silent"
OUTCOMES: tuple[str, ...] = (NOTIFIED, NO_ACCESS, SILENT)


class DocumentMention(peewee.Model):
    document = peewee.ForeignKeyField(Document, on_delete="CASCADE", column_name="document_id")
    # Block ids are chosen by editors (any string), as in the `blocks` projection.
    block_id = peewee.TextField()
    user = peewee.ForeignKeyField(User, on_delete="CASCADE", column_name="user_id", index=True)
    # Who wrote the update that brought the mention (the log's `Collab-User`); null: unknown.
    mentioned_by = peewee.ForeignKeyField(
        User,
        null=True,
        on_delete="SET NULL",
        column_name="mentioned_by",
        index=True,
        backref="mentions_made",
    )
    seq = peewee.BigIntegerField()  # the log entry that brought it (or the scan's seq)
    outcome = peewee.TextField(constraints=[role_check("outcome", OUTCOMES)])
    created_at = timestamptz(default_now=True)

    class Meta:
        table_name = "document_mentions"
        database = Document._meta.database
        primary_key = peewee.CompositeKey("document", "block_id", "user")


class DocumentMentionScan(peewee.Model):
    """The log seq through which a document was scanned for mentions; moved forward only. A
    document without a row has never been scanned: its whole log is new. -1 (documents that
    existed before detection, migration 0018): the next scan records what is there silently."""

    document = peewee.ForeignKeyField(
        Document, primary_key=True, on_delete="CASCADE", column_name="document_id"
    )
    seq = peewee.BigIntegerField()
    updated_at = timestamptz(default_now=True)

    class Meta:
        table_name = "document_mention_scans"
        database = Document._meta.database


MENTION_TABLES = [DocumentMention, DocumentMentionScan]
