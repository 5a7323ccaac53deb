"""Data access for workspaces, their members and invitations.

Functions that take `conn` run inside the caller's transaction (an action function in
`services/workspaces.py`); those that take `db` are single reads. Every list is one query.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

import asyncpg

from models.db import Database, Executor

WORKSPACE_COLUMNS = "w.id, w.name, w.slug, w.created_by, w.created_at, w.updated_at"
MEMBER_COLUMNS = (
    "m.user_id, m.role, m.created_at AS joined_at, m.updated_at, u.email, u.display_name"
)
INVITATION_COLUMNS = (
    "i.id, i.workspace_id, i.email, i.role, i.invited_by, i.expires_at, i.accepted_at,"
    " i.accepted_by, i.revoked_at, i.created_at"
)


def _row(record: asyncpg.Record | None) -> dict[str, Any] | None:
    return None if record is None else dict(record)


# --- workspaces ---------------------------------------------------------------------------------


async def insert_workspace(
    conn: asyncpg.Connection, name: str, slug: str, created_by: str
) -> dict[str, Any]:
    """Raises asyncpg.UniqueViolationError when the slug is taken (case-insensitively)."""
    row = await conn.fetchrow(
        "INSERT INTO workspaces AS w (name, slug, created_by) VALUES ($1, $2, $3)"
        f" RETURNING {WORKSPACE_COLUMNS}",
        name,
        slug,
        created_by,
    )
    return dict(row)


async def get_workspace(db: Executor, workspace_id: str) -> dict[str, Any] | None:
    return _row(
        await db.fetchrow(
            f"SELECT {WORKSPACE_COLUMNS} FROM workspaces w"
            " WHERE w.id = $1 AND w.deleted_at IS NULL",
            workspace_id,
        )
    )


async def lock_workspace(conn: asyncpg.Connection, workspace_id: str) -> dict[str, Any] | None:
    """Lock a live workspace row: membership changes of one workspace run one at a time, so two
    concurrent demotions cannot leave it without an Owner."""
    return _row(
        await conn.fetchrow(
            f"SELECT {WORKSPACE_COLUMNS} FROM workspaces w"
            " WHERE w.id = $1 AND w.deleted_at IS NULL FOR UPDATE",
            workspace_id,
        )
    )


async def list_user_workspaces(
    db: Database, user_id: str, limit: int, offset: int
) -> list[dict[str, Any]]:
    rows = await db.fetch(
        f"SELECT {WORKSPACE_COLUMNS}, m.role AS my_role FROM workspace_members m"
        " JOIN workspaces w ON w.id = m.workspace_id AND w.deleted_at IS NULL"
        " WHERE m.user_id = $1 ORDER BY w.created_at, w.id LIMIT $2 OFFSET $3",
        user_id,
        limit,
        offset,
    )
    return [dict(r) for r in rows]


async def update_workspace(
    conn: asyncpg.Connection, workspace_id: str, changes: Mapping[str, object]
) -> dict[str, Any]:
    """`changes` keys come from a fixed whitelist (the service), never from the client."""
    assignments = ", ".join(f"{column} = ${i}" for i, column in enumerate(changes, start=2))
    row = await conn.fetchrow(
        f"UPDATE workspaces AS w SET {assignments}, updated_at = now()"
        f" WHERE w.id = $1 RETURNING {WORKSPACE_COLUMNS}",
        workspace_id,
        *changes.values(),
    )
    return dict(row)


async def soft_delete_workspace(conn: asyncpg.Connection, workspace_id: str) -> datetime:
    return await conn.fetchval(
        "UPDATE workspaces SET deleted_at = now(), updated_at = now() WHERE id = $1"
        " RETURNING deleted_at",
        workspace_id,
    )


async def purge_deleted(
    conn: asyncpg.Connection, older_than_s: float, limit: int
) -> list[asyncpg.Record]:
    """Hard-delete soft-deleted workspaces past their grace period (FKs cascade to their content).

    Returns (workspace id, its document ids) so the caller can drop their JetStream subjects.
    """
    return await conn.fetch(
        "WITH doomed AS ("
        "  SELECT id FROM workspaces WHERE deleted_at < now() - make_interval(secs => $1)"
        "  ORDER BY deleted_at LIMIT $2 FOR UPDATE SKIP LOCKED),"
        " docs AS ("
        "  SELECT d.workspace_id, array_agg(d.id) AS document_ids FROM documents d"
        "  JOIN doomed ON doomed.id = d.workspace_id GROUP BY d.workspace_id),"
        " gone AS (DELETE FROM workspaces w USING doomed WHERE w.id = doomed.id RETURNING w.id)"
        " SELECT gone.id, COALESCE(docs.document_ids, '{}') AS document_ids"
        " FROM gone LEFT JOIN docs ON docs.workspace_id = gone.id",
        older_than_s,
        limit,
    )


# --- members ------------------------------------------------------------------------------------


async def add_member(conn: asyncpg.Connection, workspace_id: str, user_id: str, role: str) -> bool:
    """False when the user is already a member (nothing changed)."""
    added = await conn.fetchval(
        "INSERT INTO workspace_members (workspace_id, user_id, role) VALUES ($1, $2, $3)"
        " ON CONFLICT (workspace_id, user_id) DO NOTHING RETURNING true",
        workspace_id,
        user_id,
        role,
    )
    return bool(added)


async def member_role(db: Executor, workspace_id: str, user_id: str) -> str | None:
    return await db.fetchval(
        "SELECT role FROM workspace_members WHERE workspace_id = $1 AND user_id = $2",
        workspace_id,
        user_id,
    )


async def is_member_email(db: Executor, workspace_id: str, email: str) -> bool:
    return bool(
        await db.fetchval(
            "SELECT true FROM workspace_members m JOIN users u ON u.id = m.user_id"
            " WHERE m.workspace_id = $1 AND lower(u.email) = lower($2)",
            workspace_id,
            email,
        )
    )


async def count_owners(conn: asyncpg.Connection, workspace_id: str) -> int:
    return await conn.fetchval(
        "SELECT count(*) FROM workspace_members WHERE workspace_id = $1 AND role = 'owner'",
        workspace_id,
    )


async def list_members(
    db: Database, workspace_id: str, limit: int, offset: int
) -> list[dict[str, Any]]:
    rows = await db.fetch(
        f"SELECT {MEMBER_COLUMNS} FROM workspace_members m JOIN users u ON u.id = m.user_id"
        " WHERE m.workspace_id = $1 ORDER BY m.created_at, m.user_id LIMIT $2 OFFSET $3",
        workspace_id,
        limit,
        offset,
    )
    return [dict(r) for r in rows]


async def list_member_ids(conn: Executor, workspace_id: str) -> list[str]:
    rows = await conn.fetch(
        "SELECT user_id FROM workspace_members WHERE workspace_id = $1", workspace_id
    )
    return [str(r["user_id"]) for r in rows]


async def get_member(db: Executor, workspace_id: str, user_id: str) -> dict[str, Any] | None:
    return _row(
        await db.fetchrow(
            f"SELECT {MEMBER_COLUMNS} FROM workspace_members m JOIN users u ON u.id = m.user_id"
            " WHERE m.workspace_id = $1 AND m.user_id = $2",
            workspace_id,
            user_id,
        )
    )


async def set_member_role(
    conn: asyncpg.Connection, workspace_id: str, user_id: str, role: str
) -> None:
    await conn.execute(
        "UPDATE workspace_members SET role = $3, updated_at = now()"
        " WHERE workspace_id = $1 AND user_id = $2",
        workspace_id,
        user_id,
        role,
    )


async def delete_member(conn: asyncpg.Connection, workspace_id: str, user_id: str) -> None:
    """Remove the membership and the user's board/document grants in the workspace, so someone
    invited back later starts from a clean slate instead of regaining old private shares."""
    await conn.execute(
        "DELETE FROM board_members g USING boards b"
        " WHERE g.board_id = b.id AND b.workspace_id = $1 AND g.user_id = $2",
        workspace_id,
        user_id,
    )
    await conn.execute(
        "DELETE FROM document_grants g USING documents d"
        " WHERE g.document_id = d.id AND d.workspace_id = $1 AND g.user_id = $2",
        workspace_id,
        user_id,
    )
    await conn.execute(
        "DELETE FROM workspace_members WHERE workspace_id = $1 AND user_id = $2",
        workspace_id,
        user_id,
    )


# --- invitations --------------------------------------------------------------------------------


async def insert_invitation(
    conn: asyncpg.Connection,
    workspace_id: str,
    email: str,
    role: str,
    token_hash: str,
    invited_by: str,
    expires_at: datetime,
) -> dict[str, Any]:
    """Raises asyncpg.UniqueViolationError while another invitation for the email is pending."""
    row = await conn.fetchrow(
        "INSERT INTO invitations AS i"
        " (workspace_id, email, role, token_hash, invited_by, expires_at)"
        f" VALUES ($1, $2, $3, $4, $5, $6) RETURNING {INVITATION_COLUMNS}",
        workspace_id,
        email,
        role,
        token_hash,
        invited_by,
        expires_at,
    )
    return dict(row)


async def retire_expired_invitation(
    conn: asyncpg.Connection, workspace_id: str, email: str
) -> None:
    """An expired, never-used invitation frees its slot (the pending-email unique index)."""
    await conn.execute(
        "UPDATE invitations SET revoked_at = now() WHERE workspace_id = $1"
        " AND lower(email) = lower($2) AND accepted_at IS NULL AND revoked_at IS NULL"
        " AND expires_at <= now()",
        workspace_id,
        email,
    )


async def list_pending_invitations(
    db: Database, workspace_id: str, invited_by: str | None, limit: int, offset: int
) -> list[dict[str, Any]]:
    """Pending = neither accepted, revoked nor expired; only `invited_by`'s when given."""
    rows = await db.fetch(
        f"SELECT {INVITATION_COLUMNS}, u.display_name AS invited_by_name FROM invitations i"
        " LEFT JOIN users u ON u.id = i.invited_by"
        " WHERE i.workspace_id = $1 AND i.accepted_at IS NULL AND i.revoked_at IS NULL"
        " AND i.expires_at > now() AND ($2::uuid IS NULL OR i.invited_by = $2)"
        " ORDER BY i.created_at, i.id LIMIT $3 OFFSET $4",
        workspace_id,
        invited_by,
        limit,
        offset,
    )
    return [dict(r) for r in rows]


async def lock_invitation(
    conn: asyncpg.Connection, workspace_id: str, invitation_id: str
) -> dict[str, Any] | None:
    return _row(
        await conn.fetchrow(
            f"SELECT {INVITATION_COLUMNS} FROM invitations i"
            " WHERE i.id = $1 AND i.workspace_id = $2 FOR UPDATE",
            invitation_id,
            workspace_id,
        )
    )


async def revoke_invitation(conn: asyncpg.Connection, invitation_id: str) -> None:
    await conn.execute(
        "UPDATE invitations SET revoked_at = now() WHERE id = $1 AND revoked_at IS NULL",
        invitation_id,
    )


async def find_invitation_by_hash(conn: Executor, token_hash: str) -> dict[str, Any] | None:
    """The invitation with its workspace's name, whether or not it is still usable."""
    return _row(
        await conn.fetchrow(
            f"SELECT {INVITATION_COLUMNS}, w.deleted_at AS workspace_deleted_at"
            " FROM invitations i JOIN workspaces w ON w.id = i.workspace_id"
            " WHERE i.token_hash = $1",
            token_hash,
        )
    )


async def claim_invitation(conn: asyncpg.Connection, invitation_id: str, user_id: str) -> bool:
    """Mark used, atomically: of two concurrent accepts exactly one gets True."""
    claimed = await conn.fetchval(
        "UPDATE invitations SET accepted_at = now(), accepted_by = $2"
        " WHERE id = $1 AND accepted_at IS NULL AND revoked_at IS NULL AND expires_at > now()"
        " RETURNING true",
        invitation_id,
        user_id,
    )
    return bool(claimed)


async def invitation_is_pending(db: Executor, invitation_id: str) -> bool:
    """Still worth an email: neither accepted, revoked nor expired."""
    return bool(
        await db.fetchval(
            "SELECT true FROM invitations WHERE id = $1 AND accepted_at IS NULL"
            " AND revoked_at IS NULL AND expires_at > now()",
            invitation_id,
        )
    )


ADMIN_WORKSPACE_COLUMNS = f"{WORKSPACE_COLUMNS}, w.deleted_at"


async def list_all_workspaces(db: Database, limit: int, offset: int) -> list[dict]:
    """Every workspace, deleted ones too (the admin view), newest first."""
    rows = await db.fetch(
        f"SELECT {ADMIN_WORKSPACE_COLUMNS} FROM workspaces w"
        " ORDER BY w.created_at DESC, w.id LIMIT $1 OFFSET $2",
        limit,
        offset,
    )
    return [dict(r) for r in rows]


async def lock_deleted_at(conn: asyncpg.Connection, workspace_id: str) -> asyncpg.Record | None:
    """(deleted_at,) of a workspace, row locked against a concurrent purge; None if gone."""
    return await conn.fetchrow(
        "SELECT deleted_at FROM workspaces WHERE id = $1 FOR UPDATE", workspace_id
    )


async def undelete_workspace(conn: asyncpg.Connection, workspace_id: str) -> dict:
    row = await conn.fetchrow(
        "UPDATE workspaces w SET deleted_at = NULL, updated_at = now() WHERE w.id = $1"
        f" RETURNING {ADMIN_WORKSPACE_COLUMNS}",
        workspace_id,
    )
    assert row is not None  # locked by the caller
    return dict(row)
