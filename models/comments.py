"""Comment threads on documents and cards, their comments and emoji reactions (migration 0017).

A thread **is** its top comment plus one level of replies: the first comment of a thread has no
parent, every reply's `parent_id` is that top comment (a reply to a reply is a reply to the
thread). Deleting a comment keeps a tombstone row (`deleted_at`), so a thread never loses its
shape and replies never dangle. Threads outlive their authors (`created_by`/`author_id` are
`SET NULL` on a hard user delete) and are archived, not deleted, with their document or card.
"""

from __future__ import annotations

import peewee
from playhouse.postgres_ext import ArrayField, BinaryJSONField

from models.base import BaseModel, timestamptz
from models.board_items import Card
from models.boards import Board
from models.documents import Document
from models.users import User
from models.workspaces import Workspace

THREAD_STATUSES = ("open", "resolved")
ANCHOR_STATES = ("anchored", "orphaned")


def _in(column: str, values: tuple[str, ...]) -> peewee.SQL | peewee.NodeList:
    allowed = ", ".join(f"'{v}'" for v in values)
    return peewee.Check(f"{column} IN ({allowed})")


class CommentThread(BaseModel):
    """On a document (anchored to a block, optionally a text range) or on a card (no anchor)."""

    workspace = peewee.ForeignKeyField(Workspace, on_delete="CASCADE", index=True)
    document = peewee.ForeignKeyField(Document, null=True, on_delete="CASCADE", index=False)
    # Card threads: the card's board (the permission scope, and what stays when a card is
    # deleted: the card reference is nulled, the thread archived).
    board = peewee.ForeignKeyField(Board, null=True, on_delete="CASCADE", index=True)
    card = peewee.ForeignKeyField(Card, null=True, on_delete="SET NULL", index=False)
    # The anchor (document threads): a block id of the BlockNote tree, and optionally a text
    # range as two Yjs relative positions in `Y.relativePositionToJSON` form.
    block_id = peewee.TextField(null=True)
    anchor_start = BinaryJSONField(null=True, index=False)
    anchor_end = BinaryJSONField(null=True, index=False)
    anchor_state = peewee.TextField(null=True, constraints=[_in("anchor_state", ANCHOR_STATES)])
    quoted_text = peewee.TextField(null=True)
    # The projection sequence the anchor state and quote were computed at.
    anchor_seq = peewee.BigIntegerField(default=0, constraints=[peewee.SQL("DEFAULT 0")])
    status = peewee.TextField(
        default="open", constraints=[peewee.SQL("DEFAULT 'open'"), _in("status", THREAD_STATUSES)]
    )
    resolved_by = peewee.ForeignKeyField(
        User,
        column_name="resolved_by",
        null=True,
        on_delete="SET NULL",
        index=True,
        backref="threads_resolved",
    )
    resolved_at = timestamptz(null=True)
    created_by = peewee.ForeignKeyField(
        User,
        column_name="created_by",
        null=True,
        on_delete="SET NULL",
        index=True,
        backref="threads_created",
    )
    updated_at = timestamptz(default_now=True)
    # Set when the document or card goes away: hidden from every list, kept for the record.
    archived_at = timestamptz(null=True)

    class Meta:
        table_name = "comment_threads"
        indexes = (
            (("document", "created_at"), False),
            (("card", "created_at"), False),
        )
        constraints = [
            peewee.Check("(document_id IS NULL) <> (board_id IS NULL)"),
        ]


class Comment(BaseModel):
    thread = peewee.ForeignKeyField(CommentThread, on_delete="CASCADE", index=False)
    # null: the thread's top comment; else the top comment (one level of replies).
    parent = peewee.ForeignKeyField("self", null=True, on_delete="CASCADE", index=True)
    author = peewee.ForeignKeyField(
        User,
        column_name="author_id",
        null=True,
        on_delete="SET NULL",
        index=True,
        backref="comments_written",
    )
    # Rich text JSON (`services/comment_body.py`); null once deleted (the tombstone).
    body = BinaryJSONField(null=True, index=False)
    text = peewee.TextField(default="", constraints=[peewee.SQL("DEFAULT ''")])
    # Users mentioned (members of the workspace when written; unknown ids are dropped).
    mentions = ArrayField(peewee.UUIDField, default=list, index=False)
    edited_at = timestamptz(null=True)
    deleted_at = timestamptz(null=True)
    deleted_by = peewee.ForeignKeyField(
        User,
        column_name="deleted_by",
        null=True,
        on_delete="SET NULL",
        index=True,
        backref="comments_deleted",
    )

    class Meta:
        table_name = "comments"
        indexes = ((("thread", "created_at"), False),)


class CommentReaction(peewee.Model):
    comment = peewee.ForeignKeyField(Comment, on_delete="CASCADE", column_name="comment_id")
    user = peewee.ForeignKeyField(User, on_delete="CASCADE", column_name="user_id", index=True)
    emoji = peewee.TextField()
    created_at = timestamptz(default_now=True)

    class Meta:
        table_name = "comment_reactions"
        database = Comment._meta.database
        primary_key = peewee.CompositeKey("comment", "user", "emoji")


COMMENT_TABLES = [CommentThread, Comment, CommentReaction]
