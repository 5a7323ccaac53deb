"""Data access for deleting one's own account (services/account_lifecycle.py)."""

from __future__ import annotations

from datetime import datetime

import asyncpg

from models.db import Executor

# An argon2 hash never looks like this, so no password matches it.
NO_PASSWORD = "!deleted"


async def sole_owned_workspaces(db: Executor, user_id: str) -> list[dict[str, str]]:
    """Live workspaces where the user is the only Owner (in id order)."""
    rows = await db.fetch(
        "SELECT w.id, w.name FROM workspaces w JOIN workspace_members m"
        " ON m.workspace_id = w.id AND m.user_id = $1 AND m.role = 'owner'"
        " WHERE w.deleted_at IS NULL AND NOT EXISTS (SELECT 1 FROM workspace_members o"
        "  WHERE o.workspace_id = w.id AND o.role = 'owner' AND o.user_id <> $1)"
        " ORDER BY w.id",
        user_id,
    )
    return [{"id": str(r["id"]), "name": r["name"]} for r in rows]


async def erase_user(conn: asyncpg.Connection, user_id: str, valid_after: datetime) -> bool:
    """Remove what identifies the person and everything that lets the account act: email (freed
    for a new account), name, password, admin flag, memberships and grants; `is_active` false and
    the token cut-off moved to `valid_after`. The row stays (authors of content point at it)."""
    status = await conn.execute(
        "UPDATE users SET email = 'deleted-' || id::text || '@deleted.invalid',"
        " display_name = 'Deleted user', password_hash = $3, is_active = false,"
        " is_admin = false, email_verified_at = NULL, deleted_at = now(), updated_at = now(),"
        " tokens_valid_after = $2 WHERE id = $1 AND deleted_at IS NULL",
        user_id,
        valid_after,
        NO_PASSWORD,
    )
    if status.split()[-1] == "0":
        return False
    for table in ("document_grants", "board_members", "workspace_members"):
        await conn.execute(f"DELETE FROM {table} WHERE user_id = $1", user_id)
    await conn.execute("DELETE FROM account_tokens WHERE user_id = $1", user_id)
    return True


async def memberships_of(db: Executor, user_id: str) -> list[tuple[str, str]]:
    """(workspace id, role) of the user's memberships in live workspaces."""
    rows = await db.fetch(
        "SELECT m.workspace_id, m.role FROM workspace_members m"
        " JOIN workspaces w ON w.id = m.workspace_id AND w.deleted_at IS NULL"
        " WHERE m.user_id = $1 ORDER BY m.workspace_id",
        user_id,
    )
    return [(str(r["workspace_id"]), r["role"]) for r in rows]


async def is_deleted(db: Executor, user_id: str) -> bool:
    return bool(
        await db.fetchval("SELECT deleted_at IS NOT NULL FROM users WHERE id = $1", user_id)
    )
