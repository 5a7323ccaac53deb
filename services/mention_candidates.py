"""Mention autocomplete: the workspace members the caller may `@mention`, by name or email prefix.

Any member may ask (Guests too: they comment); the caller is left out (a mention of yourself
notifies nobody). With a document, the caller must be able to mention in it (`document:comment`:
comment or edit, the two places a mention is written) and every candidate carries `can_view`:
whether they may view that document, decided by the policy's own rule table compiled to SQL for
each member (`policy.document_role_sql`, as search and the listings use it), in the one query.
Members who cannot view it are still listed, after those who can: mentioning them is allowed and
reports "no access" back to the author (services/body_mentions.py), who may then share the page.
That flag tells a caller who may already write in the document which members can read it; the
member list with roles is visible to every member anyway.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from core.errors import NotFound
from services import policy
from services.policy import Action, Resource

if TYPE_CHECKING:
    from services.deps import Deps

MAX_QUERY_CHARS = 100  # longer than any display name or email prefix anyone types
MAX_CANDIDATES = 50  # an autocomplete menu, not a member listing (that one is paginated)
DEFAULT_CANDIDATES = 10

_CAN_VIEW = policy.allows_sql(policy.document_role_sql("m.role"), Action.DOCUMENT_VIEW)

# $1 workspace, $2 caller, $3 document (or NULL), $4 lowercased LIKE-escaped prefix ('' = any),
# $5 limit. The document's page chain, board and board grant are joined per member, as the
# policy's `_DOCUMENT_SQL` loads them for one user.
MENTIONABLE_SQL = f"""
SELECT u.id AS user_id, u.display_name, u.email, m.role,
       CASE WHEN d.id IS NULL THEN NULL ELSE coalesce({_CAN_VIEW}, false) END AS can_view
FROM workspace_members m
JOIN users u ON u.id = m.user_id AND u.is_active
LEFT JOIN documents d ON d.id = $3::uuid
{policy.document_chain_join(document="d", user="m.user_id")}
LEFT JOIN boards b ON b.id = d.board_id
LEFT JOIN board_members bg ON bg.board_id = d.board_id AND bg.user_id = m.user_id
WHERE m.workspace_id = $1 AND m.user_id <> $2
  AND ($4 = ''
       OR lower(u.display_name) LIKE $4 || '%' ESCAPE '\\'
       OR lower(u.display_name) LIKE '% ' || $4 || '%' ESCAPE '\\'
       OR lower(u.email) LIKE $4 || '%' ESCAPE '\\')
ORDER BY can_view DESC NULLS LAST, lower(u.display_name), u.id
LIMIT $5
"""


@dataclass(frozen=True)
class MentionQuery:
    """`q`: a prefix of a display name, of any word in it, or of the email ('' = everyone)."""

    q: str = ""
    document_id: str | None = None
    limit: int = DEFAULT_CANDIDATES


def like_prefix(text: str) -> str:
    """`text` lowercased with LIKE's wildcards escaped (a typed `_` or `%` matches itself)."""
    escaped = text.strip().lower().replace("\\", "\\\\")
    return escaped.replace("%", "\\%").replace("_", "\\_")


async def mentionable(
    ctx: Deps, actor_id: str, workspace_id: str, query: MentionQuery
) -> list[dict[str, Any]]:
    await policy.require(ctx, actor_id, Action.WORKSPACE_VIEW, Resource.workspace(workspace_id))
    if query.document_id is not None:
        access = await policy.require(
            ctx, actor_id, Action.DOCUMENT_COMMENT, Resource.document(query.document_id)
        )
        if access.workspace_id != workspace_id:  # another workspace's page names nothing here
            raise NotFound("document not found", fields={"document_id": ["not in this workspace"]})
    rows = await ctx.db.fetch(
        MENTIONABLE_SQL,
        workspace_id,
        actor_id,
        query.document_id,
        like_prefix(query.q),
        query.limit,
    )
    return [dict(r) for r in rows]
