"""Data access for boards, board members (grants) and board labels.

Functions take an asyncpg connection (or the `Database`, for single statements) so the services
can run several of them in one transaction. Rows come back as dicts shaped like the REST entities
(`bus/schemas/board_entities.py`), with computed `archived`/`deleted` flags.
"""

from __future__ import annotations

from typing import Any

import asyncpg

from models.db import Executor

BOARD_COLUMNS = (
    "b.id, b.workspace_id, b.name, b.description, b.color, b.background, b.is_private,"
    " b.archived_at, b.archived_at IS NOT NULL AS archived, b.deleted_at IS NOT NULL AS deleted,"
    " b.created_by, b.created_at, b.updated_at, b.version, b.event_seq"
)
BOARD_UPDATABLE = frozenset(
    {"name", "description", "color", "background", "is_private", "archived_at", "deleted_at"}
)
LABEL_COLUMNS = "id, board_id, name, color"
MEMBER_COLUMNS = "g.board_id, g.user_id, g.role, u.display_name, g.granted_by, g.created_at"


def as_dict(record: asyncpg.Record | None) -> dict[str, Any] | None:
    return None if record is None else dict(record)


def set_clause(changes: dict[str, Any], allowed: frozenset[str], first_param: int) -> str:
    """`col = $n, …` for an UPDATE; column names come only from the `allowed` whitelist."""
    unknown = set(changes) - allowed
    if unknown:
        raise ValueError(f"not updatable: {sorted(unknown)}")
    return ", ".join(f"{col} = ${first_param + i}" for i, col in enumerate(changes))


# --- boards ----------------------------------------------------------------------------------


async def get_board(db: Executor, board_id: str) -> dict[str, Any] | None:
    """A live (not deleted) board."""
    return as_dict(
        await db.fetchrow(
            f"SELECT {BOARD_COLUMNS} FROM boards b WHERE b.id = $1 AND b.deleted_at IS NULL",
            board_id,
        )
    )


async def lock_board(conn: asyncpg.Connection, board_id: str) -> dict[str, Any] | None:
    """Lock a live board row for this transaction: every change on a board serialises here.

    `FOR NO KEY UPDATE` (not `FOR UPDATE`) so inserts elsewhere that merely reference the board
    (grants, documents) are not blocked by a long board transaction.
    """
    return as_dict(
        await conn.fetchrow(
            f"SELECT {BOARD_COLUMNS} FROM boards b WHERE b.id = $1 AND b.deleted_at IS NULL"
            " FOR NO KEY UPDATE",
            board_id,
        )
    )


async def insert_board(conn: asyncpg.Connection, fields: dict[str, Any]) -> dict[str, Any]:
    row = await conn.fetchrow(
        "WITH b AS (INSERT INTO boards"
        " (workspace_id, name, description, color, background, is_private, created_by)"
        " VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING *)"
        f" SELECT {BOARD_COLUMNS} FROM b",
        fields["workspace_id"],
        fields["name"],
        fields.get("description", ""),
        fields.get("color"),
        fields.get("background"),
        fields.get("is_private", False),
        fields["created_by"],
    )
    return dict(row)


async def update_board(
    conn: asyncpg.Connection, board_id: str, changes: dict[str, Any]
) -> dict[str, Any]:
    """Apply `changes` and bump the version (the caller holds the board lock)."""
    sets = set_clause(changes, BOARD_UPDATABLE, 2)
    row = await conn.fetchrow(
        f"WITH b AS (UPDATE boards SET {sets}, version = version + 1, updated_at = now()"
        f" WHERE id = $1 RETURNING *) SELECT {BOARD_COLUMNS} FROM b",
        board_id,
        *changes.values(),
    )
    return dict(row)


async def set_event_seq(conn: asyncpg.Connection, board_id: str, seq: int) -> None:
    await conn.execute("UPDATE boards SET event_seq = $2 WHERE id = $1", board_id, seq)


# --- members (explicit grants) ---------------------------------------------------------------


async def list_members(db: Executor, board_id: str) -> list[dict[str, Any]]:
    rows = await db.fetch(
        f"SELECT {MEMBER_COLUMNS} FROM board_members g JOIN users u ON u.id = g.user_id"
        " WHERE g.board_id = $1 ORDER BY g.created_at, g.user_id",
        board_id,
    )
    return [dict(r) for r in rows]


async def get_member(db: Executor, board_id: str, user_id: str) -> dict[str, Any] | None:
    return as_dict(
        await db.fetchrow(
            f"SELECT {MEMBER_COLUMNS} FROM board_members g JOIN users u ON u.id = g.user_id"
            " WHERE g.board_id = $1 AND g.user_id = $2",
            board_id,
            user_id,
        )
    )


async def upsert_member(
    conn: asyncpg.Connection, board_id: str, user_id: str, role: str, granted_by: str
) -> dict[str, Any]:
    await conn.execute(
        "INSERT INTO board_members (board_id, user_id, role, granted_by)"
        " VALUES ($1, $2, $3, $4)"
        " ON CONFLICT (board_id, user_id)"
        " DO UPDATE SET role = EXCLUDED.role, granted_by = EXCLUDED.granted_by",
        board_id,
        user_id,
        role,
        granted_by,
    )
    member = await get_member(conn, board_id, user_id)
    assert member is not None
    return member


async def delete_member(conn: asyncpg.Connection, board_id: str, user_id: str) -> bool:
    status = await conn.execute(
        "DELETE FROM board_members WHERE board_id = $1 AND user_id = $2", board_id, user_id
    )
    return status.endswith(" 1")


async def workspace_role(db: Executor, workspace_id: str, user_id: str) -> str | None:
    return await db.fetchval(
        "SELECT role FROM workspace_members WHERE workspace_id = $1 AND user_id = $2",
        workspace_id,
        user_id,
    )


# --- labels ----------------------------------------------------------------------------------


async def list_labels(db: Executor, board_id: str) -> list[dict[str, Any]]:
    rows = await db.fetch(
        f"SELECT {LABEL_COLUMNS} FROM board_labels WHERE board_id = $1 ORDER BY created_at, id",
        board_id,
    )
    return [dict(r) for r in rows]


async def get_label(db: Executor, label_id: str) -> dict[str, Any] | None:
    return as_dict(
        await db.fetchrow(f"SELECT {LABEL_COLUMNS} FROM board_labels WHERE id = $1", label_id)
    )


async def insert_label(
    conn: asyncpg.Connection, board_id: str, name: str, color: str
) -> dict[str, Any]:
    """Raises asyncpg.UniqueViolationError when the board has a label of that name already."""
    row = await conn.fetchrow(
        f"INSERT INTO board_labels (board_id, name, color) VALUES ($1, $2, $3)"
        f" RETURNING {LABEL_COLUMNS}",
        board_id,
        name,
        color,
    )
    return dict(row)


async def update_label(
    conn: asyncpg.Connection, label_id: str, changes: dict[str, Any]
) -> dict[str, Any]:
    sets = set_clause(changes, frozenset({"name", "color"}), 2)
    row = await conn.fetchrow(
        f"UPDATE board_labels SET {sets} WHERE id = $1 RETURNING {LABEL_COLUMNS}",
        label_id,
        *changes.values(),
    )
    return dict(row)


async def delete_label(conn: asyncpg.Connection, label_id: str) -> None:
    await conn.execute("DELETE FROM board_labels WHERE id = $1", label_id)


async def labels_of_board(conn: asyncpg.Connection, board_id: str, label_ids: list[str]) -> set:
    """The subset of `label_ids` defined on `board_id`."""
    rows = await conn.fetch(
        "SELECT id FROM board_labels WHERE board_id = $1 AND id = ANY($2::uuid[])",
        board_id,
        label_ids,
    )
    return {str(r["id"]) for r in rows}
