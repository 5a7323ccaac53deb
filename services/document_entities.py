"""What the document services return: a document's header, a document with its content, a
page's privacy, its versions. Built from repository rows (`from_row`, `core/entity.py`), serialised by the
schemas of `handlers/schemas/documents.py`, which read them by attribute as they read rows by key.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Self
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


@dataclass(frozen=True)
class Version(FromRow):
    """A saved state of a document: `auto`, `named` or `restore`, at a stream sequence."""

    id: UUID
    document_id: UUID
    seq: int
    kind: str
    name: str | None
    created_by: UUID | None
    created_at: datetime


@dataclass(frozen=True)
class StoredVersion(Version):
    """A version with its full CRDT state (what restoring and diffing read)."""

    state: bytes

    @classmethod
    def from_row(cls, row: Mapping[str, Any]) -> Self:
        return super().from_row({**row, "state": bytes(row["state"])})


@dataclass(frozen=True)
class Person:
    """A writer of a document's log (`user_id`: the log's Collab-User) and their name, if known."""

    user_id: str
    display_name: str | None


@dataclass(frozen=True)
class Authors:
    """Who wrote the updates a version contains, and who wrote those since the previous one."""

    authors: tuple[Person, ...]
    edited_by: tuple[Person, ...]


@dataclass(frozen=True)
class VersionDetail(Version):
    # The version's block tree: open JSON, as `Document.content`.
    content: dict[str, Any]
    authors: tuple[Person, ...]
    edited_by: tuple[Person, ...]


@dataclass(frozen=True)
class VersionDiff:
    """What changed from one version to another (`services/block_diff.py`)."""

    from_: Version
    to: Version
    fragment: str
    # Block and root changes as block_diff reports them: block JSON and text diffs, open JSON.
    blocks: dict[str, Any]
    roots: dict[str, Any]


@dataclass(frozen=True)
class DocumentSummary(FromRow):
    """A document in a listing: its effective privacy and the caller's role on it."""

    id: UUID
    workspace_id: UUID
    board_id: UUID | None
    parent_id: UUID | None
    title: str
    is_private: bool
    created_by: UUID | None
    created_at: datetime
    updated_at: datetime
    my_role: str


@dataclass(frozen=True)
class DocumentGrant(FromRow):
    """A workspace member's explicit role on one document."""

    user_id: UUID
    email: str
    display_name: str
    role: str
    granted_by: UUID | None
    created_at: datetime
