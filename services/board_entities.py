"""What the board services return: a board, list, card, checklist item, label or member.

Each is built from its repository row at the boundary (`from_row`, `core/entity.py`) and
serialised where it leaves the domain by the entity schemas of `bus/schemas/board_entities.py`,
the one contract of REST responses and board events. Marshmallow reads a dataclass by attribute
as it read the row by key, so the JSON is what it was.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol, Self
from uuid import UUID

from core.entity import FromRow


class OnBoard(Protocol):
    """Anything that belongs to one board (what authorising an action on it needs)."""

    @property
    def board_id(self) -> UUID: ...


class Versioned(Protocol):
    """An entity under optimistic concurrency."""

    @property
    def version(self) -> int: ...


@dataclass(frozen=True)
class Board(FromRow):
    id: UUID
    workspace_id: UUID
    name: str
    description: str
    color: str | None
    background: str | None
    is_private: bool
    archived: bool
    archived_at: datetime | None
    deleted: bool
    created_by: UUID | None
    created_at: datetime
    updated_at: datetime
    version: int
    # The board's event sequence when this was read (or of the event that carries it).
    event_seq: int


@dataclass(frozen=True)
class BoardList(FromRow):
    id: UUID
    board_id: UUID
    name: str
    position: str
    archived: bool
    archived_at: datetime | None
    created_at: datetime
    updated_at: datetime
    version: int


@dataclass(frozen=True)
class ChecklistItem(FromRow):
    id: UUID
    card_id: UUID
    text: str
    is_done: bool
    position: str
    created_at: datetime
    updated_at: datetime


@dataclass(frozen=True)
class CardRef(FromRow):
    """A card's own place and version, without its children: what authorising and locking it
    read (the repository's card row without labels, assignees and checklist)."""

    id: UUID
    board_id: UUID
    list_id: UUID
    archived: bool
    version: int


@dataclass(frozen=True)
class Card(FromRow):
    """A card with its labels, assignees and checklist, as the API shows it."""

    id: UUID
    board_id: UUID
    list_id: UUID
    title: str
    description: str
    position: str
    due_at: datetime | None
    color: str | None
    cover_url: str | None
    labels: tuple[UUID, ...]
    assignees: tuple[UUID, ...]
    checklist: tuple[ChecklistItem, ...]
    archived: bool
    archived_at: datetime | None
    created_by: UUID | None
    created_at: datetime
    updated_at: datetime
    version: int

    @classmethod
    def from_row(cls, row: Mapping[str, Any]) -> Self:
        return super().from_row(
            {
                **row,
                "labels": tuple(row["labels"]),
                "assignees": tuple(row["assignees"]),
                "checklist": tuple(ChecklistItem.from_row(item) for item in row["checklist"]),
            }
        )


@dataclass(frozen=True)
class ListWithCards(BoardList):
    cards: tuple[Card, ...]

    @classmethod
    def from_row(cls, row: Mapping[str, Any]) -> Self:
        return super().from_row({**row, "cards": tuple(Card.from_row(c) for c in row["cards"])})


@dataclass(frozen=True)
class Label(FromRow):
    id: UUID
    board_id: UUID
    name: str
    color: str


@dataclass(frozen=True)
class Member(FromRow):
    """An explicit grant of a board role."""

    board_id: UUID
    user_id: UUID
    role: str
    display_name: str
    granted_by: UUID | None
    created_at: datetime


@dataclass(frozen=True)
class BoardDetail(Board):
    """A board with everything on it, in display order."""

    lists: tuple[ListWithCards, ...]
    labels: tuple[Label, ...]

    @classmethod
    def of(cls, board: Board, lists: Sequence[ListWithCards], labels: Sequence[Label]) -> Self:
        return cls(**vars(board), lists=tuple(lists), labels=tuple(labels))


@dataclass(frozen=True)
class BoardSummary(FromRow):
    """A board in a workspace's listing, with the caller's role on it."""

    id: UUID
    workspace_id: UUID
    name: str
    description: str
    color: str | None
    is_private: bool
    created_by: UUID | None
    created_at: datetime
    updated_at: datetime
    archived_at: datetime | None
    my_role: str
