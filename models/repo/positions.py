"""Placing an item among its siblings with a rank key (core/ranks.py), in SQL.

The caller holds the board lock, so no other writer changes this collection until commit; the
DEFERRABLE unique constraint on (parent, position) is the last guard. An item is placed between its
requested neighbours by computing one new key: one row written. Only when that key would be longer
than `ranks.MAX_KEY_LENGTH` is the whole collection rebalanced (every key rewritten, order kept).
"""

from __future__ import annotations

from dataclasses import dataclass

import asyncpg

from core import ranks
from core.errors import Conflict, ValidationFailed


@dataclass(frozen=True)
class Collection:
    """One kind of ordered children: `table` rows ordered by `position` under `parent` column."""

    table: str
    parent: str
    constraint: str
    scope: str  # the `positions.rebalanced` scope name


LISTS = Collection("board_lists", "board_id", "board_lists_position_key", "lists")
CARDS = Collection("cards", "list_id", "cards_position_key", "cards")
CHECKLIST = Collection("checklist_items", "card_id", "checklist_items_position_key", "checklist")


@dataclass(frozen=True)
class Placement:
    position: str
    # New keys of the other items when the collection had to be rebalanced, else None.
    rebalanced: dict[str, str] | None = None


async def count(conn: asyncpg.Connection, c: Collection, parent_id: str) -> int:
    return await conn.fetchval(f"SELECT count(*) FROM {c.table} WHERE {c.parent} = $1", parent_id)


async def _position_of(
    conn: asyncpg.Connection, c: Collection, parent_id: str, item_id: str, field: str
) -> str:
    key = await conn.fetchval(
        f"SELECT position FROM {c.table} WHERE id = $1 AND {c.parent} = $2", item_id, parent_id
    )
    if key is None:
        raise ValidationFailed(
            f"{field} is not in the target collection", fields={field: ["not a sibling"]}
        )
    return key


async def _next_key(
    conn: asyncpg.Connection, c: Collection, parent_id: str, key: str, exclude_id: str | None
) -> str | None:
    return await conn.fetchval(
        f"SELECT min(position) FROM {c.table} WHERE {c.parent} = $1"
        ' AND position > $2 COLLATE "C" AND id IS DISTINCT FROM $3',
        parent_id,
        key,
        exclude_id,
    )


async def _previous_key(
    conn: asyncpg.Connection, c: Collection, parent_id: str, key: str | None, exclude_id: str | None
) -> str | None:
    """The greatest key below `key` (None: the greatest key of the collection)."""
    if key is None:
        return await conn.fetchval(
            f"SELECT max(position) FROM {c.table} WHERE {c.parent} = $1 AND id IS DISTINCT FROM $2",
            parent_id,
            exclude_id,
        )
    return await conn.fetchval(
        f"SELECT max(position) FROM {c.table} WHERE {c.parent} = $1"
        ' AND position < $2 COLLATE "C" AND id IS DISTINCT FROM $3',
        parent_id,
        key,
        exclude_id,
    )


async def neighbours(
    conn: asyncpg.Connection,
    c: Collection,
    parent_id: str,
    after_id: str | None,
    before_id: str | None,
    exclude_id: str | None,
) -> tuple[str | None, str | None]:
    """The keys the new position must lie between (None = open end).

    `exclude_id` is the item being moved: it never counts as its own neighbour. With both ids the
    two must still be adjacent, else the client's view is stale: 409.
    """
    for field, ref in (("after_id", after_id), ("before_id", before_id)):
        if ref is not None and ref == exclude_id:
            raise ValidationFailed(
                "an item cannot be placed next to itself", fields={field: ["is the item itself"]}
            )
    if before_id is None:
        if after_id is None:
            return await _previous_key(conn, c, parent_id, None, exclude_id), None
        low = await _position_of(conn, c, parent_id, after_id, "after_id")
        return low, await _next_key(conn, c, parent_id, low, exclude_id)
    high = await _position_of(conn, c, parent_id, before_id, "before_id")
    if after_id is None:
        return await _previous_key(conn, c, parent_id, high, exclude_id), high
    low = await _position_of(conn, c, parent_id, after_id, "after_id")
    if low >= high or await _next_key(conn, c, parent_id, low, exclude_id) != high:
        raise Conflict("after_id and before_id are no longer neighbours", code="stale_placement")
    return low, high


async def rebalance(conn: asyncpg.Connection, c: Collection, parent_id: str) -> dict[str, str]:
    """Rewrite every key of one collection with evenly spaced short keys, order unchanged."""
    ids = [
        str(r["id"])
        for r in await conn.fetch(
            f"SELECT id FROM {c.table} WHERE {c.parent} = $1 ORDER BY position", parent_id
        )
    ]
    keys = ranks.spread(len(ids))
    # New keys may equal old keys of other rows mid-statement; checked at commit instead.
    await conn.execute(f"SET CONSTRAINTS {c.constraint} DEFERRED")
    await conn.execute(
        f"UPDATE {c.table} t SET position = v.position"
        " FROM unnest($1::uuid[], $2::text[]) AS v(id, position) WHERE t.id = v.id",
        ids,
        keys,
    )
    return dict(zip(ids, keys, strict=True))


async def place(
    conn: asyncpg.Connection,
    c: Collection,
    parent_id: str,
    *,
    after_id: str | None = None,
    before_id: str | None = None,
    exclude_id: str | None = None,
) -> Placement:
    """A free key for an item at the requested place (rebalancing first when keys ran long)."""
    low, high = await neighbours(conn, c, parent_id, after_id, before_id, exclude_id)
    key = ranks.key_between(low, high)
    if not ranks.needs_rebalance(key):
        return Placement(key)
    rebalanced = await rebalance(conn, c, parent_id)
    low, high = await neighbours(conn, c, parent_id, after_id, before_id, exclude_id)
    return Placement(ranks.key_between(low, high), rebalanced)
