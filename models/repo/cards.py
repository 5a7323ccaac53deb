"""Data access for lists, cards (with labels, assignees, checklist) and a whole board's contents.

Reading cards always costs a fixed number of queries (cards, then their labels, assignees and
checklist items with `= ANY($ids)`), whether one card or a whole board: no N+1.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping
from typing import Any
from uuid import UUID

import asyncpg

from models.repo.boards import Executor, as_dict, set_clause

LIST_COLUMNS = (
    "l.id, l.board_id, l.name, l.position, l.archived_at, l.archived_at IS NOT NULL AS archived,"
    " l.created_at, l.updated_at, l.version"
)
CARD_COLUMNS = (
    "c.id, c.board_id, c.list_id, c.title, c.description, c.position, c.due_at, c.color,"
    " c.cover_url, c.archived_at, c.archived_at IS NOT NULL AS archived,"
    " c.created_by, c.created_at, c.updated_at, c.version"
)
CHECKLIST_COLUMNS = "id, card_id, text, is_done, position, created_at, updated_at"
LIST_UPDATABLE = frozenset({"name", "position", "archived_at"})
CARD_UPDATABLE = frozenset(
    {
        "title",
        "description",
        "due_at",
        "color",
        "cover_url",
        "position",
        "list_id",
        "board_id",
        "archived_at",
    }
)
CHECKLIST_UPDATABLE = frozenset({"text", "is_done"})


# --- lists -----------------------------------------------------------------------------------


async def get_list(db: Executor, list_id: str) -> dict[str, Any] | None:
    return as_dict(
        await db.fetchrow(f"SELECT {LIST_COLUMNS} FROM board_lists l WHERE l.id = $1", list_id)
    )


async def lock_list(conn: asyncpg.Connection, list_id: str) -> dict[str, Any] | None:
    return as_dict(
        await conn.fetchrow(
            f"SELECT {LIST_COLUMNS} FROM board_lists l WHERE l.id = $1 FOR UPDATE", list_id
        )
    )


async def insert_list(
    conn: asyncpg.Connection, board_id: str, name: str, position: str, created_by: str
) -> dict[str, Any]:
    row = await conn.fetchrow(
        "WITH l AS (INSERT INTO board_lists (board_id, name, position, created_by)"
        f" VALUES ($1, $2, $3, $4) RETURNING *) SELECT {LIST_COLUMNS} FROM l",
        board_id,
        name,
        position,
        created_by,
    )
    return dict(row)


async def update_list(
    conn: asyncpg.Connection, list_id: str, changes: dict[str, Any]
) -> dict[str, Any]:
    sets = set_clause(changes, LIST_UPDATABLE, 2)
    row = await conn.fetchrow(
        f"WITH l AS (UPDATE board_lists SET {sets}, version = version + 1, updated_at = now()"
        f" WHERE id = $1 RETURNING *) SELECT {LIST_COLUMNS} FROM l",
        list_id,
        *changes.values(),
    )
    return dict(row)


# --- cards -----------------------------------------------------------------------------------


async def _attach_children(db: Executor, cards: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Fill `labels`, `assignees` and `checklist` of `cards` with three queries in total."""
    ids = [card["id"] for card in cards]
    labels: dict[Any, list] = defaultdict(list)
    assignees: dict[Any, list] = defaultdict(list)
    checklist: dict[Any, list] = defaultdict(list)
    if ids:
        for row in await db.fetch(
            "SELECT card_id, label_id FROM card_labels WHERE card_id = ANY($1::uuid[])"
            " ORDER BY created_at, label_id",
            ids,
        ):
            labels[row["card_id"]].append(row["label_id"])
        for row in await db.fetch(
            "SELECT card_id, user_id FROM card_assignees WHERE card_id = ANY($1::uuid[])"
            " ORDER BY created_at, user_id",
            ids,
        ):
            assignees[row["card_id"]].append(row["user_id"])
        for row in await db.fetch(
            f"SELECT {CHECKLIST_COLUMNS} FROM checklist_items WHERE card_id = ANY($1::uuid[])"
            " ORDER BY card_id, position",
            ids,
        ):
            checklist[row["card_id"]].append(dict(row))
    for card in cards:
        card["labels"] = labels[card["id"]]
        card["assignees"] = assignees[card["id"]]
        card["checklist"] = checklist[card["id"]]
    return cards


async def get_card_row(db: Executor, card_id: str, *, lock: bool = False) -> dict[str, Any] | None:
    """The card's own columns (no children); `lock` takes a row lock for this transaction."""
    suffix = " FOR UPDATE" if lock else ""
    return as_dict(
        await db.fetchrow(f"SELECT {CARD_COLUMNS} FROM cards c WHERE c.id = $1{suffix}", card_id)
    )


async def get_card(db: Executor, card_id: str) -> dict[str, Any] | None:
    """The card as the API returns it (with labels, assignees and checklist)."""
    row = await get_card_row(db, card_id)
    return None if row is None else (await _attach_children(db, [row]))[0]


async def insert_card(
    conn: asyncpg.Connection,
    board_id: UUID,
    list_id: UUID,
    fields: Mapping[str, Any],
    position: str,
) -> str:
    return str(
        await conn.fetchval(
            "INSERT INTO cards (board_id, list_id, title, description, position, due_at, color,"
            " cover_url, created_by) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) RETURNING id",
            board_id,
            list_id,
            fields["title"],
            fields.get("description", ""),
            position,
            fields.get("due_at"),
            fields.get("color"),
            fields.get("cover_url"),
            fields["created_by"],
        )
    )


async def update_card(conn: asyncpg.Connection, card_id: str, changes: dict[str, Any]) -> None:
    """Apply column `changes` (may be empty: a children-only change) and bump the version."""
    sets = set_clause(changes, CARD_UPDATABLE, 2)
    prefix = f"{sets}, " if sets else ""
    await conn.execute(
        f"UPDATE cards SET {prefix}version = version + 1, updated_at = now() WHERE id = $1",
        card_id,
        *changes.values(),
    )


async def delete_card(conn: asyncpg.Connection, card_id: str) -> None:
    await conn.execute("DELETE FROM cards WHERE id = $1", card_id)


async def replace_links(
    conn: asyncpg.Connection, card_id: str, table: str, column: str, ids: list[str]
) -> list[str]:
    """Make `ids` the card's labels (`card_labels`/`label_id`) or assignees (`card_assignees`/
    `user_id`), keeping the rows of those that stay; returns the ids that were not linked yet."""
    if (table, column) not in (("card_labels", "label_id"), ("card_assignees", "user_id")):
        raise ValueError(f"not a card link table: {table}.{column}")
    await conn.execute(
        f"DELETE FROM {table} WHERE card_id = $1 AND NOT ({column} = ANY($2::uuid[]))",
        card_id,
        ids,
    )
    added = await conn.fetch(
        f"INSERT INTO {table} (card_id, {column}) SELECT $1, unnest($2::uuid[])"
        f" ON CONFLICT (card_id, {column}) DO NOTHING RETURNING {column}",
        card_id,
        ids,
    )
    return [str(row[column]) for row in added]


async def cards_with_label(conn: asyncpg.Connection, label_id: str) -> list[str]:
    rows = await conn.fetch("SELECT card_id FROM card_labels WHERE label_id = $1", label_id)
    return [str(r["card_id"]) for r in rows]


# --- checklist items -------------------------------------------------------------------------


async def get_checklist_item(db: Executor, item_id: str) -> dict[str, Any] | None:
    return as_dict(
        await db.fetchrow(f"SELECT {CHECKLIST_COLUMNS} FROM checklist_items WHERE id = $1", item_id)
    )


async def count_checklist_items(db: Executor, card_id: str) -> int:
    return await db.fetchval("SELECT count(*) FROM checklist_items WHERE card_id = $1", card_id)


async def insert_checklist_item(
    conn: asyncpg.Connection, card_id: str, text: str, is_done: bool, position: str
) -> None:
    await conn.execute(
        "INSERT INTO checklist_items (card_id, text, is_done, position) VALUES ($1, $2, $3, $4)",
        card_id,
        text,
        is_done,
        position,
    )


async def update_checklist_item(
    conn: asyncpg.Connection, item_id: str, changes: dict[str, Any]
) -> None:
    sets = set_clause(changes, CHECKLIST_UPDATABLE, 2)
    await conn.execute(
        f"UPDATE checklist_items SET {sets}, updated_at = now() WHERE id = $1",
        item_id,
        *changes.values(),
    )


async def delete_checklist_item(conn: asyncpg.Connection, item_id: str) -> None:
    await conn.execute("DELETE FROM checklist_items WHERE id = $1", item_id)


# --- a whole board ---------------------------------------------------------------------------


async def load_board_contents(
    db: Executor, board_id: str, *, include_archived: bool
) -> list[dict[str, Any]]:
    """The board's lists in order, each with its cards in order (five queries in total)."""
    live = "" if include_archived else " AND archived_at IS NULL"
    lists = [
        dict(r)
        for r in await db.fetch(
            f"SELECT {LIST_COLUMNS} FROM board_lists l WHERE l.board_id = $1{live}"
            " ORDER BY l.position",
            board_id,
        )
    ]
    cards = [
        dict(r)
        for r in await db.fetch(
            f"SELECT {CARD_COLUMNS} FROM cards c WHERE c.board_id = $1{live}"
            " ORDER BY c.list_id, c.position",
            board_id,
        )
    ]
    by_list: dict[Any, list] = defaultdict(list)
    for card in await _attach_children(db, cards):
        by_list[card["list_id"]].append(card)
    for item in lists:
        item["cards"] = by_list[item["id"]]
    return lists
