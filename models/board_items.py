"""Board contents: lists, cards, labels, assignees, checklist items, and the board event log.

Ordering: every ordered row has a `position` key from `core.ranks` (fractional indexing). Keys
compare as bytes, so the column uses `COLLATE "C"`; a unique index per parent is the last guard
against two writers producing the same key (the service also serialises writers per board).
The unique constraints on positions are DEFERRABLE so a rebalance can rewrite a whole list in one
statement without tripping over intermediate duplicates.

Events: `boards.event_seq` (added to the board header table here) is incremented in the same
transaction as each change, and the event row is written there too, so a board's sequence is
durable and gapless; `published_at` marks rows already on JetStream.
"""

from __future__ import annotations

import peewee
from playhouse.postgres_ext import BinaryJSONField

from core.ranks import MAX_KEY_LENGTH
from models.base import BaseModel, timestamptz
from models.boards import Board
from models.users import User

POSITION_COLLATION = '"C"'


def position_field() -> peewee.TextField:
    return peewee.TextField(
        collation=POSITION_COLLATION,
        constraints=[peewee.Check(f"char_length(position) BETWEEN 2 AND {MAX_KEY_LENGTH}")],
    )


def version_field() -> peewee.IntegerField:
    """Optimistic concurrency: bumped by every write of the row (If-Match / `version`)."""
    return peewee.IntegerField(default=1, constraints=[peewee.SQL("DEFAULT 1")])


class _Archivable(BaseModel):
    """What lists and cards share: author, edit time, archiving, optimistic version."""

    created_by = peewee.ForeignKeyField(
        User, column_name="created_by", null=True, on_delete="SET NULL", index=True
    )
    updated_at = timestamptz(default_now=True)
    archived_at = timestamptz(null=True)
    version = version_field()


class BoardList(_Archivable):
    board = peewee.ForeignKeyField(Board, on_delete="CASCADE", index=True)
    name = peewee.TextField()
    position = position_field()

    class Meta:
        table_name = "board_lists"


class Card(_Archivable):
    # Denormalised from the list so a board loads its cards with one indexed query, and a
    # cross-board move updates one row.
    board = peewee.ForeignKeyField(Board, on_delete="CASCADE", index=True)
    list = peewee.ForeignKeyField(BoardList, on_delete="CASCADE", index=True)
    title = peewee.TextField()
    description = peewee.TextField(default="", constraints=[peewee.SQL("DEFAULT ''")])
    position = position_field()
    due_at = timestamptz(null=True)
    color = peewee.TextField(null=True)
    cover_url = peewee.TextField(null=True)

    class Meta:
        table_name = "cards"


class BoardLabel(BaseModel):
    """A label defined on one board; cards of that board may carry it."""

    board = peewee.ForeignKeyField(Board, on_delete="CASCADE", index=True)
    name = peewee.TextField()
    color = peewee.TextField()

    class Meta:
        table_name = "board_labels"


class CardLabel(BaseModel):
    card = peewee.ForeignKeyField(Card, on_delete="CASCADE", index=True)
    label = peewee.ForeignKeyField(BoardLabel, on_delete="CASCADE", index=True)

    class Meta:
        table_name = "card_labels"
        indexes = ((("card", "label"), True),)


class CardAssignee(BaseModel):
    card = peewee.ForeignKeyField(Card, on_delete="CASCADE", index=True)
    user = peewee.ForeignKeyField(User, on_delete="CASCADE", index=True)

    class Meta:
        table_name = "card_assignees"
        indexes = ((("card", "user"), True),)


class ChecklistItem(BaseModel):
    card = peewee.ForeignKeyField(Card, on_delete="CASCADE", index=True)
    text = peewee.TextField()
    is_done = peewee.BooleanField(default=False, constraints=[peewee.SQL("DEFAULT false")])
    position = position_field()
    updated_at = timestamptz(default_now=True)

    class Meta:
        table_name = "checklist_items"


class BoardEvent(BaseModel):
    """One board event (the JSON published on `collab.board.<id>.event`), kept for `since` resume
    and as the outbox: rows with `published_at IS NULL` are (re)published by the relay."""

    board = peewee.ForeignKeyField(Board, on_delete="CASCADE", index=True)
    workspace_id = peewee.UUIDField()
    seq = peewee.BigIntegerField()
    type = peewee.TextField()
    payload = BinaryJSONField(index=False)
    published_at = timestamptz(null=True)

    class Meta:
        table_name = "board_events"
        indexes = ((("board", "seq"), True),)


BOARD_ITEM_TABLES = [
    BoardList,
    Card,
    BoardLabel,
    CardLabel,
    CardAssignee,
    ChecklistItem,
    BoardEvent,
]

# Columns this area adds to the board header table of migration 0002.
BOARD_HEADER_COLUMNS_DDL = (
    "ALTER TABLE boards ADD COLUMN IF NOT EXISTS event_seq bigint NOT NULL DEFAULT 0",
    "ALTER TABLE boards ADD COLUMN IF NOT EXISTS background text",
)


def deferrable_unique(table: str, name: str, columns: str) -> str:
    """`ADD CONSTRAINT … UNIQUE … DEFERRABLE` is not idempotent by itself: guard it."""
    return (
        "DO $$ BEGIN"
        f" IF NOT EXISTS (SELECT 1 FROM pg_constraint WHERE conname = '{name}') THEN"
        f" ALTER TABLE {table} ADD CONSTRAINT {name} UNIQUE ({columns})"
        " DEFERRABLE INITIALLY IMMEDIATE;"
        " END IF; END $$"
    )


BOARD_ITEM_INDEXES_DDL = (
    deferrable_unique("board_lists", "board_lists_position_key", "board_id, position"),
    deferrable_unique("cards", "cards_position_key", "list_id, position"),
    deferrable_unique("checklist_items", "checklist_items_position_key", "card_id, position"),
    "CREATE UNIQUE INDEX IF NOT EXISTS board_labels_name_key ON board_labels (board_id, lower(name))",
    # Pending events per board, in order (the relay's query).
    "CREATE INDEX IF NOT EXISTS board_events_unpublished ON board_events (board_id, seq)"
    " WHERE published_at IS NULL",
    "CREATE INDEX IF NOT EXISTS board_events_created ON board_events (created_at)",
)
