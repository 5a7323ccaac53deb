"""Full-text search over document titles, block text, board cards and comments, filtered by the
policy.

One query per page: the four kinds of hits are matched through their GIN-indexed `search_tsv`
columns (kept by row triggers, models/migrations/m0009_search.py) and each branch carries the
policy's own visibility rule compiled to SQL (`policy.document_role_sql` / `board_role_sql`, the
ones `services/visibility.py` lists with), so a search can never return — or rank, or count —
anything `policy.can(view)` would refuse, and access revoked a moment ago is gone from the next
query (no cache, no fetch-then-filter). Deleted documents, archived cards/lists/boards and deleted
workspaces are excluded in the same WHERE.

Pagination is a keyset cursor over (rank, key): stable while the caller pages, cheap at any depth.
Snippets come from `ts_headline` with private-use markers that are turned into `<mark>` after the
text is HTML-escaped, so a snippet is safe to render as HTML.
"""

from __future__ import annotations

import base64
import binascii
import html
import json
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any
from uuid import UUID

from core.entity import FromRow
from core.errors import ValidationFailed
from server.settings import ConfigError
from services import policy
from services.policy import Action
from services.search_query import query_words

if TYPE_CHECKING:
    from services.deps import Deps

KINDS = ("document", "block", "card", "comment")
_OPEN, _CLOSE = "\ue000", "\ue001"
HEADLINE_OPTIONS = f'StartSel="{_OPEN}", StopSel="{_CLOSE}", MaxWords=35, MinWords=15'

_DOC_ROLE = policy.document_role_sql("m.role")
_BOARD_ROLE = policy.board_role_sql("m.role")
_DOC_VISIBLE = policy.allows_sql(_DOC_ROLE, Action.DOCUMENT_VIEW)
_BOARD_VISIBLE = policy.allows_sql(_BOARD_ROLE, Action.BOARD_VIEW)

# The caller is $1; the document's workspace membership, effective privacy and grant up the page
# chain, board and board grant, as the policy's `_DOCUMENT_SQL` loads them.
_DOC_JOINS = f"""
  JOIN workspaces w ON w.id = d.workspace_id AND w.deleted_at IS NULL
  JOIN workspace_members m ON m.workspace_id = d.workspace_id AND m.user_id = $1
  {policy.document_chain_join(user="$1")}
  LEFT JOIN boards b ON b.id = d.board_id
  LEFT JOIN board_members bg ON bg.board_id = d.board_id AND bg.user_id = $1
"""


# A card on a live board and list, with the caller's workspace membership and board grant ($1).
_CARD_JOINS = """
  JOIN boards b ON b.id = c.board_id AND b.deleted_at IS NULL AND b.archived_at IS NULL
  JOIN board_lists l ON l.id = c.list_id AND l.archived_at IS NULL
  JOIN workspaces w ON w.id = b.workspace_id AND w.deleted_at IS NULL
  JOIN workspace_members m ON m.workspace_id = b.workspace_id AND m.user_id = $1
  LEFT JOIN board_members g ON g.board_id = b.id AND g.user_id = $1
"""
# A comment that is not deleted, in a thread that is not archived (its target went away).
_COMMENT_JOIN = """
  JOIN comment_threads t ON t.id = cm.thread_id AND t.archived_at IS NULL
"""
_COMMENT_TIME = "coalesce(cm.edited_at, cm.created_at)"


def _filters(workspace: str, board: str, author: str, updated: str) -> str:
    return (
        f"($3::uuid IS NULL OR {workspace} = $3) AND ($4::uuid IS NULL OR {board} = $4)"
        f" AND ($6::uuid IS NULL OR {author} = $6)"
        f" AND ($7::timestamptz IS NULL OR {updated} > $7)"
    )


SEARCH_SQL = f"""
WITH q AS (
  SELECT to_tsquery('collab_search', (
    SELECT string_agg(quote_literal(t.w)
                      || CASE WHEN t.n = cardinality($2::text[]) THEN ':*' ELSE '' END,
                      ' & ' ORDER BY t.n)
    FROM unnest($2::text[]) WITH ORDINALITY AS t(w, n))) AS query
),
hits AS (
  SELECT 'document'::text AS type, d.id AS document_id, NULL::text AS block_id,
         NULL::uuid AS card_id, d.board_id, d.workspace_id, d.title, d.title AS body,
         d.created_by AS author_id, d.updated_at,
         ts_rank(d.search_tsv, q.query)::float8 AS rank, 'd:' || d.id::text AS key,
         NULL::uuid AS thread_id, NULL::uuid AS comment_id
  FROM q JOIN documents d ON d.search_tsv @@ q.query
  {_DOC_JOINS}
  WHERE 'document' = ANY($5::text[]) AND d.deleted_at IS NULL AND {_DOC_VISIBLE}
    AND {_filters("d.workspace_id", "d.board_id", "d.created_by", "d.updated_at")}
  UNION ALL
  SELECT 'block', d.id, bl.block_id, NULL::uuid, d.board_id, d.workspace_id, d.title, bl.text,
         d.created_by, coalesce(p.updated_at, d.updated_at),
         ts_rank(bl.search_tsv, q.query)::float8, 'b:' || d.id::text || ':' || bl.block_id,
         NULL::uuid, NULL::uuid
  FROM q JOIN blocks bl ON bl.search_tsv @@ q.query
  JOIN documents d ON d.id = bl.document_id
  {_DOC_JOINS}
  LEFT JOIN document_projections p ON p.document_id = d.id
  WHERE 'block' = ANY($5::text[]) AND d.deleted_at IS NULL AND {_DOC_VISIBLE}
    AND {
    _filters("d.workspace_id", "d.board_id", "d.created_by", "coalesce(p.updated_at, d.updated_at)")
}
  UNION ALL
  SELECT 'card', NULL::uuid, NULL::text, c.id, c.board_id, b.workspace_id, c.title,
         concat_ws(' — ', c.title, nullif(c.description, ''),
                   (SELECT string_agg(i.text, ' · ' ORDER BY i.position)
                    FROM checklist_items i WHERE i.card_id = c.id)),
         c.created_by, c.updated_at,
         ts_rank(c.search_tsv, q.query)::float8, 'c:' || c.id::text, NULL::uuid, NULL::uuid
  FROM q JOIN cards c ON c.search_tsv @@ q.query
  {_CARD_JOINS}
  WHERE 'card' = ANY($5::text[]) AND c.archived_at IS NULL AND {_BOARD_VISIBLE}
    AND {_filters("b.workspace_id", "c.board_id", "c.created_by", "c.updated_at")}
  UNION ALL
  SELECT 'comment', d.id, t.block_id, NULL::uuid, d.board_id, d.workspace_id, d.title, cm.text,
         cm.author_id, {_COMMENT_TIME}, ts_rank(cm.search_tsv, q.query)::float8,
         'm:' || cm.id::text, t.id, cm.id
  FROM q JOIN comments cm ON cm.search_tsv @@ q.query
  {_COMMENT_JOIN}
  JOIN documents d ON d.id = t.document_id
  {_DOC_JOINS}
  WHERE 'comment' = ANY($5::text[]) AND cm.deleted_at IS NULL AND d.deleted_at IS NULL
    AND {_DOC_VISIBLE}
    AND {_filters("d.workspace_id", "d.board_id", "cm.author_id", _COMMENT_TIME)}
  UNION ALL
  SELECT 'comment', NULL::uuid, NULL::text, c.id, c.board_id, b.workspace_id, c.title, cm.text,
         cm.author_id, {_COMMENT_TIME}, ts_rank(cm.search_tsv, q.query)::float8,
         'm:' || cm.id::text, t.id, cm.id
  FROM q JOIN comments cm ON cm.search_tsv @@ q.query
  {_COMMENT_JOIN}
  JOIN cards c ON c.id = t.card_id AND c.archived_at IS NULL
  {_CARD_JOINS}
  WHERE 'comment' = ANY($5::text[]) AND cm.deleted_at IS NULL AND {_BOARD_VISIBLE}
    AND {_filters("b.workspace_id", "c.board_id", "cm.author_id", _COMMENT_TIME)}
)
SELECT h.*, ts_headline('collab_search', h.body, q.query, $11) AS snippet
FROM (
  SELECT * FROM hits
  WHERE $8::float8 IS NULL OR (rank, key COLLATE "C") < ($8, $9::text COLLATE "C")
  ORDER BY rank DESC, key COLLATE "C" DESC
  LIMIT $10
) h, q
ORDER BY h.rank DESC, h.key COLLATE "C" DESC
"""


@dataclass(frozen=True)
class SearchRequest:
    """A validated search: the words, the filters and where the page starts."""

    q: str
    kinds: tuple[str, ...] = KINDS
    workspace_id: str | None = None
    board_id: str | None = None
    author_id: str | None = None
    updated_after: datetime | None = None
    cursor: str | None = None
    limit: int = 20


def encode_cursor(rank: float, key: str) -> str:
    raw = json.dumps([rank, key], separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str) -> tuple[float, str]:
    """The (rank, key) a page ends at; a 400 for anything this module did not produce."""
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        rank, key = json.loads(raw)
        if isinstance(rank, (int, float)) and not isinstance(rank, bool) and isinstance(key, str):
            return float(rank), key
    except (ValueError, binascii.Error, TypeError):
        pass
    raise ValidationFailed("invalid cursor", fields={"cursor": ["invalid cursor"]})


def highlight(snippet: str) -> str:
    """HTML-escape the text, then turn the headline markers into `<mark>` (safe to render)."""
    escaped = html.escape(snippet, quote=False)
    return escaped.replace(_OPEN, "<mark>").replace(_CLOSE, "</mark>")


@dataclass(frozen=True)
class SearchHit(FromRow):
    """One thing found: a block, document, card or comment, where it is and why it matched."""

    type: str  # one of KINDS
    document_id: UUID | None
    block_id: str | None
    card_id: UUID | None
    thread_id: UUID | None  # comment hits: the thread
    comment_id: UUID | None
    board_id: UUID | None
    workspace_id: UUID
    title: str
    snippet: str  # HTML-escaped text, matches in <mark>
    rank: float
    author_id: UUID | None
    updated_at: datetime
    link: str  # API path of the block, card, thread or document


@dataclass(frozen=True)
class SearchPage:
    """Hits best first; `next_cursor`: where the next page starts (None: this was the last)."""

    results: list[SearchHit]
    next_cursor: str | None


def _link(row: Mapping[str, Any]) -> str:
    if row["type"] == "comment":
        return f"/api/v1/threads/{row['thread_id']}/"
    if row["type"] == "card":
        return f"/api/v1/cards/{row['card_id']}/"
    if row["type"] == "block":
        return f"/api/v1/documents/{row['document_id']}/blocks/{row['block_id']}/"
    return f"/api/v1/documents/{row['document_id']}/"


async def search(ctx: Deps, actor_id: str, request: SearchRequest) -> SearchPage:
    """A page of hits the caller may view, best first, and the cursor of the next page."""
    words = query_words(request.q)
    after: tuple[float | None, str | None] = (None, None)
    if request.cursor:
        after = decode_cursor(request.cursor)
    rows = await ctx.db.fetch(
        SEARCH_SQL,
        actor_id,
        words,
        request.workspace_id,
        request.board_id,
        list(request.kinds),
        request.author_id,
        request.updated_after,
        after[0],
        after[1],
        request.limit + 1,
        HEADLINE_OPTIONS,
    )
    page = [dict(r) for r in rows[: request.limit]]
    results = [
        SearchHit.from_row({**row, "snippet": highlight(row["snippet"] or ""), "link": _link(row)})
        for row in page
    ]
    more = len(rows) > request.limit
    next_cursor = encode_cursor(page[-1]["rank"], page[-1]["key"]) if more and page else None
    return SearchPage(results, next_cursor)


class SearchIndex:
    """Startup step: build the `collab_search` configuration from `COLLAB_SEARCH_LANGUAGE` (and
    re-vector every row once if the language changed since the last start)."""

    def __init__(self, ctx: Deps) -> None:
        self.ctx = ctx

    async def start(self) -> None:
        language = self.ctx.settings.search_language
        config = await self.ctx.db.fetchval(
            "SELECT oid::regconfig::text FROM pg_ts_config WHERE cfgname = $1 LIMIT 1", language
        )
        if config is None:
            raise ConfigError(
                f"COLLAB_SEARCH_LANGUAGE={language!r} is not a Postgres text search configuration"
            )
        await self.ctx.db.fetchval("SELECT collab_search_configure($1::regconfig)", config)

    async def stop(self) -> None:
        return None
