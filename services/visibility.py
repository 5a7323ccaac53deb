"""Workspace-scoped listings of boards and documents, filtered by what the caller may view.

One query per page: the visibility filter is the policy's own rule table compiled to SQL
(`policy.resource_role_sql`), joined with the caller's grants, so a listing and `policy.can` can
never disagree (tests/test_policy_matrix.py checks that on the whole matrix). The caller's workspace
role is a parameter: the handler has just loaded it through `policy.require`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import asyncpg

from services import policy
from services.board_entities import BoardSummary
from services.document_entities import DocumentSummary
from services.policy import Action, Resource

if TYPE_CHECKING:
    from services.deps import Deps

# $3 is the caller's workspace role label (the handler has just loaded it through the policy).
_BOARD_ROLE = policy.board_role_sql("$3::text")
_DOCUMENT_ROLE = policy.document_role_sql("$3::text")

BOARDS_SQL = f"""
SELECT * FROM (
  SELECT b.id, b.workspace_id, b.name, b.description, b.color, b.is_private, b.created_by,
         b.created_at, b.updated_at, b.archived_at, {_BOARD_ROLE} AS my_role
  FROM boards b
  LEFT JOIN board_members g ON g.board_id = b.id AND g.user_id = $2
  WHERE b.workspace_id = $1 AND b.deleted_at IS NULL
) visible
WHERE {policy.allows_sql("visible.my_role", Action.BOARD_VIEW)}
ORDER BY created_at, id
LIMIT $4 OFFSET $5
"""

DOCUMENTS_SQL = f"""
SELECT * FROM (
  SELECT d.id, d.workspace_id, d.board_id, d.parent_id, d.title, eff.is_private, d.created_by,
         d.created_at, d.updated_at, {_DOCUMENT_ROLE} AS my_role
  FROM documents d
  {policy.document_chain_join()}
  LEFT JOIN boards b ON b.id = d.board_id
  LEFT JOIN board_members bg ON bg.board_id = d.board_id AND bg.user_id = $2
  WHERE d.workspace_id = $1 AND d.deleted_at IS NULL
) visible
WHERE {policy.allows_sql("visible.my_role", Action.DOCUMENT_VIEW)}
ORDER BY created_at, id
LIMIT $4 OFFSET $5
"""


async def _list(
    ctx: Deps, sql: str, actor_id: str, workspace_id: str, limit: int, offset: int
) -> list[asyncpg.Record]:
    access = await policy.require(
        ctx, actor_id, Action.WORKSPACE_VIEW, Resource.workspace(workspace_id)
    )
    assert access.workspace_role is not None
    rows = await ctx.db.fetch(
        sql, workspace_id, actor_id, access.workspace_role.label, limit, offset
    )
    return list(rows)


async def list_boards(
    ctx: Deps, actor_id: str, workspace_id: str, limit: int, offset: int
) -> list[BoardSummary]:
    """Boards of the workspace the caller may view, oldest first, with the caller's role."""
    rows = await _list(ctx, BOARDS_SQL, actor_id, workspace_id, limit, offset)
    return [BoardSummary.from_row(row) for row in rows]


async def list_documents(
    ctx: Deps, actor_id: str, workspace_id: str, limit: int, offset: int
) -> list[DocumentSummary]:
    """Documents of the workspace the caller may view, oldest first, with the caller's role."""
    rows = await _list(ctx, DOCUMENTS_SQL, actor_id, workspace_id, limit, offset)
    return [DocumentSummary.from_row(row) for row in rows]
