"""What the document services return: a document's header, a document with its content, a
page's privacy. Built from repository rows (`from_row`, `core/entity.py`), serialised by the
schemas of `handlers/schemas/documents.py`, which read them by attribute as they read rows by key.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any
from uuid import UUID

from core.entity import FromRow


@dataclass(frozen=True)
class DocumentMeta(FromRow):
    """A document's header row: where it is, its title, the fragment holding its blocks."""

    id: UUID
    workspace_id: UUID
    board_id: UUID | None
    parent_id: UUID | None
    title: str
    # Its own privacy setting; None: as its parent page.
    is_private: bool | None
    # The fragment holding its block tree; None: the setting's default.
    fragment: str | None
    created_by: UUID | None
    created_at: datetime
    updated_at: datetime


@dataclass(frozen=True)
class Document(DocumentMeta):
    """A document with its content at `version` (the stream sequence the content covers)."""

    version: int
    # The block tree as the editor's JSON (`services/doc_content.to_json`): open JSON whose
    # shape is BlockNote's, checked block by block where it comes in, not a domain type here.
    content: dict[str, Any]


@dataclass(frozen=True)
class Privacy:
    """A page's privacy: effective (`is_private`) and its own setting (`own`; None: inherited)."""

    id: str
    is_private: bool
    own: bool | None
