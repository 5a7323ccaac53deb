"""What the comment services return: a thread with its comments, a comment with its reactions.

Built from repository rows (`from_row`, `core/entity.py`) and serialised where they leave the
domain (REST responses, comment events) by the entity schemas of `bus/schemas/comment_entities.py`,
which read them by attribute as they read the dicts by key: the JSON is what it was.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Self
from uuid import UUID

from core.entity import FromRow


@dataclass(frozen=True)
class Reaction(FromRow):
    """One emoji on a comment: who chose it, in the order they did."""

    emoji: str
    count: int
    user_ids: tuple[str, ...]


@dataclass(frozen=True)
class CommentRef(FromRow):
    """A comment's own row without its reactions: what authorising and changing it reads."""

    id: UUID
    thread_id: UUID
    author_id: UUID | None
    # Mentioned members' ids, in order of mention.
    mentions: tuple[str, ...]
    deleted_at: datetime | None

    @classmethod
    def from_row(cls, row: Mapping[str, Any]) -> Self:
        return super().from_row({**row, "mentions": tuple(str(u) for u in row["mentions"] or [])})


@dataclass(frozen=True)
class Comment(CommentRef):
    """A comment as a thread shows it (a deleted one is a tombstone: no body, no text)."""

    parent_id: UUID | None
    # The rich text as `services/comment_body.py` checks it: open JSON (a ProseMirror-like
    # document the editor owns), not a domain type here.
    body: dict[str, Any] | None
    text: str
    edited_at: datetime | None
    created_at: datetime
    reactions: tuple[Reaction, ...]

    @property
    def edited(self) -> bool:
        return self.edited_at is not None

    @property
    def deleted(self) -> bool:
        return self.deleted_at is not None

    @classmethod
    def from_row(cls, row: Mapping[str, Any]) -> Self:
        reactions = tuple(Reaction.from_row(r) for r in row["reactions"])
        return super().from_row({**row, "reactions": reactions})


@dataclass(frozen=True)
class ThreadAnchor:
    """Where a document thread points, and whether that block is still there."""

    block_id: str
    # Yjs relative positions as `Y.relativePositionToJSON` gives them: the client library's
    # JSON, kept as it came (null: the whole block).
    start: dict[str, Any] | None
    end: dict[str, Any] | None
    state: str
    quoted_text: str | None

    @classmethod
    def of_row(cls, row: Mapping[str, Any]) -> ThreadAnchor | None:
        if row["block_id"] is None:
            return None
        return cls(
            row["block_id"],
            row["anchor_start"],
            row["anchor_end"],
            row["anchor_state"],
            row["quoted_text"],
        )


@dataclass(frozen=True)
class ThreadHead(FromRow):
    """A thread's own row: its target, anchor and status, without its comments."""

    id: UUID
    workspace_id: UUID
    document_id: UUID | None
    board_id: UUID | None
    card_id: UUID | None
    # None: a thread on the whole document, or a card thread.
    anchor: ThreadAnchor | None
    status: str
    resolved_by: UUID | None
    resolved_at: datetime | None
    created_by: UUID | None
    created_at: datetime
    updated_at: datetime

    @classmethod
    def from_row(cls, row: Mapping[str, Any]) -> Self:
        return super().from_row({**row, "anchor": ThreadAnchor.of_row(row)})


@dataclass(frozen=True)
class Thread(ThreadHead):
    """A thread with its comments, top comment first."""

    comments: tuple[Comment, ...]

    @property
    def comment_count(self) -> int:
        return len(self.comments)

    @classmethod
    def of(cls, row: Mapping[str, Any], comments: Sequence[Mapping[str, Any]]) -> Thread:
        """From the thread's row and its comments' rows (`repo.comments_of`)."""
        return cls.from_row({**row, "comments": tuple(Comment.from_row(c) for c in comments)})
