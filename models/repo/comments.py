"""Data access for comment threads, comments and reactions (`models/comments.py`).

A page of threads costs three queries whatever its size: the threads, then all their comments,
then all those comments' reactions (`= ANY($ids)`), never one query per thread.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from typing import Any

import asyncpg

from models.db import Executor

THREAD_COLUMNS = (
    "t.id, t.workspace_id, t.document_id, t.board_id, t.card_id, t.block_id, t.anchor_start,"
    " t.anchor_end, t.anchor_state, t.quoted_text, t.anchor_seq, t.status, t.resolved_by,"
    " t.resolved_at, t.created_by, t.created_at, t.updated_at, t.archived_at"
)
COMMENT_COLUMNS = (
    "c.id, c.thread_id, c.parent_id, c.author_id, c.body, c.text, c.mentions, c.edited_at,"
    " c.deleted_at, c.deleted_by, c.created_at"
)


@dataclass(frozen=True)
class NewThread:
    workspace_id: str
    created_by: str
    document_id: str | None = None
    board_id: str | None = None
    card_id: str | None = None
    block_id: str | None = None
    anchor_start: dict[str, Any] | None = None
    anchor_end: dict[str, Any] | None = None
    anchor_state: str | None = None
    quoted_text: str | None = None
    anchor_seq: int = 0  # the stream sequence the anchor state was computed at


@dataclass(frozen=True)
class ThreadFilter:
    document_id: str | None = None
    card_id: str | None = None
    status: str | None = None
    block_id: str | None = None
    author_id: str | None = None


@dataclass(frozen=True)
class NewComment:
    thread_id: str
    parent_id: str | None
    author_id: str
    body: dict[str, Any]
    text: str
    mentions: list[str]


def _dict(record: asyncpg.Record | None) -> dict[str, Any] | None:
    return None if record is None else dict(record)


# --- threads ---------------------------------------------------------------------------------


async def insert_thread(conn: asyncpg.Connection, new: NewThread) -> str:
    return str(
        await conn.fetchval(
            "INSERT INTO comment_threads (workspace_id, document_id, board_id, card_id, block_id,"
            " anchor_start, anchor_end, anchor_state, quoted_text, created_by, anchor_seq)"
            " VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11) RETURNING id",
            new.workspace_id,
            new.document_id,
            new.board_id,
            new.card_id,
            new.block_id,
            new.anchor_start,
            new.anchor_end,
            new.anchor_state,
            new.quoted_text,
            new.created_by,
            new.anchor_seq,
        )
    )


async def get_thread(db: Executor, thread_id: str, *, lock: bool = False) -> dict[str, Any] | None:
    """A live thread (archived ones are gone with their document or card)."""
    suffix = " FOR UPDATE" if lock else ""
    return _dict(
        await db.fetchrow(
            f"SELECT {THREAD_COLUMNS} FROM comment_threads t"
            f" WHERE t.id = $1 AND t.archived_at IS NULL{suffix}",
            thread_id,
        )
    )


async def list_threads(
    db: Executor, where: ThreadFilter, limit: int, offset: int
) -> list[dict[str, Any]]:
    """Live threads of one document or card, oldest first; `author_id` matches the thread's
    starter or anyone who wrote a (not deleted) comment in it."""
    rows = await db.fetch(
        f"SELECT {THREAD_COLUMNS} FROM comment_threads t"
        " WHERE t.archived_at IS NULL"
        " AND ($1::uuid IS NULL OR t.document_id = $1::uuid)"
        " AND ($2::uuid IS NULL OR t.card_id = $2::uuid)"
        " AND ($3::text IS NULL OR t.status = $3::text)"
        " AND ($4::text IS NULL OR t.block_id = $4::text)"
        " AND ($5::uuid IS NULL OR EXISTS (SELECT 1 FROM comments a WHERE a.thread_id = t.id"
        "      AND a.author_id = $5::uuid AND a.deleted_at IS NULL))"
        " ORDER BY t.created_at, t.id LIMIT $6 OFFSET $7",
        where.document_id,
        where.card_id,
        where.status,
        where.block_id,
        where.author_id,
        limit,
        offset,
    )
    return [dict(r) for r in rows]


async def set_status(
    conn: asyncpg.Connection, thread_id: str, status: str, actor_id: str | None
) -> None:
    await conn.execute(
        "UPDATE comment_threads SET status = $2, updated_at = now(),"
        " resolved_by = CASE WHEN $2 = 'resolved' THEN $3::uuid END,"
        " resolved_at = CASE WHEN $2 = 'resolved' THEN now() END WHERE id = $1",
        thread_id,
        status,
        actor_id,
    )


async def touch_thread(conn: asyncpg.Connection, thread_id: str) -> None:
    await conn.execute("UPDATE comment_threads SET updated_at = now() WHERE id = $1", thread_id)


async def archive_document_threads(conn: asyncpg.Connection, doc_ids: list[str]) -> int:
    """The documents were deleted: their threads go with them (kept, hidden)."""
    status = await conn.execute(
        "UPDATE comment_threads SET archived_at = now() WHERE document_id = ANY($1::uuid[])"
        " AND archived_at IS NULL",
        doc_ids,
    )
    return int(status.split()[-1])


async def archive_card_threads(conn: asyncpg.Connection, card_id: str) -> int:
    status = await conn.execute(
        "UPDATE comment_threads SET archived_at = now() WHERE card_id = $1 AND archived_at IS NULL",
        card_id,
    )
    return int(status.split()[-1])


async def move_card_threads(conn: asyncpg.Connection, card_id: str, board_id: str) -> None:
    """A card moved to another board: its threads follow (the board is their permission scope)."""
    await conn.execute(
        "UPDATE comment_threads SET board_id = $2 WHERE card_id = $1", card_id, board_id
    )


async def anchor_positions(db: Executor, doc_id: str) -> list[dict[str, Any]]:
    """Where the document's live anchored threads point (`anchored_threads`' rows, unlocked):
    what a projection computes their anchors from before its transaction opens."""
    rows = await db.fetch(
        "SELECT t.id, t.block_id, t.anchor_start, t.anchor_end FROM comment_threads t"
        " WHERE t.document_id = $1 AND t.block_id IS NOT NULL AND t.archived_at IS NULL"
        " ORDER BY t.id",
        doc_id,
    )
    return [dict(r) for r in rows]


async def anchored_threads(conn: asyncpg.Connection, doc_id: str) -> list[dict[str, Any]]:
    """The document's live threads anchored to a block, locked (anchor tracking updates them)."""
    rows = await conn.fetch(
        f"SELECT {THREAD_COLUMNS} FROM comment_threads t WHERE t.document_id = $1"
        " AND t.block_id IS NOT NULL AND t.archived_at IS NULL ORDER BY t.id FOR UPDATE",
        doc_id,
    )
    return [dict(r) for r in rows]


async def set_anchor(
    conn: asyncpg.Connection, thread_id: str, state: str, quoted_text: str | None, seq: int
) -> bool:
    """Record the anchor as computed at projection `seq`; False if a newer one is recorded."""
    status = await conn.execute(
        "UPDATE comment_threads SET anchor_state = $2, quoted_text = $3, anchor_seq = $4,"
        " updated_at = now() WHERE id = $1 AND anchor_seq < $4",
        thread_id,
        state,
        quoted_text,
        seq,
    )
    return status.endswith(" 1")


async def participants(db: Executor, thread_id: str) -> list[str]:
    """Users who wrote in the thread (a deleted comment's author too: they took part)."""
    rows = await db.fetch(
        "SELECT DISTINCT author_id FROM comments WHERE thread_id = $1 AND author_id IS NOT NULL",
        thread_id,
    )
    return [str(r["author_id"]) for r in rows]


# --- comments --------------------------------------------------------------------------------


async def insert_comment(conn: asyncpg.Connection, new: NewComment) -> str:
    return str(
        await conn.fetchval(
            "INSERT INTO comments (thread_id, parent_id, author_id, body, text, mentions)"
            " VALUES ($1, $2, $3, $4, $5, $6::uuid[]) RETURNING id",
            new.thread_id,
            new.parent_id,
            new.author_id,
            new.body,
            new.text,
            new.mentions,
        )
    )


async def get_comment(
    db: Executor, comment_id: str, *, lock: bool = False
) -> dict[str, Any] | None:
    suffix = " FOR UPDATE OF c" if lock else ""
    return _dict(
        await db.fetchrow(
            f"SELECT {COMMENT_COLUMNS} FROM comments c JOIN comment_threads t ON t.id = c.thread_id"
            f" WHERE c.id = $1 AND t.archived_at IS NULL{suffix}",
            comment_id,
        )
    )


async def top_comment_id(db: Executor, thread_id: str) -> str | None:
    value = await db.fetchval(
        "SELECT id FROM comments WHERE thread_id = $1 AND parent_id IS NULL", thread_id
    )
    return None if value is None else str(value)


async def count_comments(db: Executor, thread_id: str) -> int:
    return int(await db.fetchval("SELECT count(*) FROM comments WHERE thread_id = $1", thread_id))


async def edit_comment(
    conn: asyncpg.Connection, comment_id: str, body: dict[str, Any], text: str, mentions: list[str]
) -> None:
    await conn.execute(
        "UPDATE comments SET body = $2, text = $3, mentions = $4::uuid[], edited_at = now()"
        " WHERE id = $1",
        comment_id,
        body,
        text,
        mentions,
    )


async def tombstone_comment(conn: asyncpg.Connection, comment_id: str, actor_id: str) -> None:
    """The comment keeps its place in the thread; its content and reactions go."""
    await conn.execute(
        "UPDATE comments SET body = NULL, text = '', mentions = '{}', deleted_at = now(),"
        " deleted_by = $2 WHERE id = $1",
        comment_id,
        actor_id,
    )
    await conn.execute("DELETE FROM comment_reactions WHERE comment_id = $1", comment_id)


async def comments_of(db: Executor, thread_ids: list[str]) -> dict[str, list[dict[str, Any]]]:
    """Each thread's comments in order (top comment first), with their reactions."""
    rows = await db.fetch(
        f"SELECT {COMMENT_COLUMNS} FROM comments c WHERE c.thread_id = ANY($1::uuid[])"
        " ORDER BY c.parent_id IS NOT NULL, c.created_at, c.id",
        thread_ids,
    )
    comments = [dict(r) for r in rows]
    reactions = await _reactions_of(db, [str(c["id"]) for c in comments])
    by_thread: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for comment in comments:
        comment["reactions"] = reactions.get(str(comment["id"]), [])
        by_thread[str(comment["thread_id"])].append(comment)
    return by_thread


# --- reactions -------------------------------------------------------------------------------


async def _reactions_of(db: Executor, comment_ids: list[str]) -> dict[str, list[dict[str, Any]]]:
    rows = await db.fetch(
        "SELECT comment_id, emoji, array_agg(user_id ORDER BY created_at) AS user_ids"
        " FROM comment_reactions WHERE comment_id = ANY($1::uuid[])"
        " GROUP BY comment_id, emoji ORDER BY comment_id, min(created_at)",
        comment_ids,
    )
    out: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for r in rows:
        users = [str(u) for u in r["user_ids"]]
        out[str(r["comment_id"])].append(
            {"emoji": r["emoji"], "count": len(users), "user_ids": users}
        )
    return out


async def add_reaction(conn: asyncpg.Connection, comment_id: str, user_id: str, emoji: str) -> bool:
    """False if the user had already reacted with this emoji (nothing changes)."""
    status = await conn.execute(
        "INSERT INTO comment_reactions (comment_id, user_id, emoji) VALUES ($1, $2, $3)"
        " ON CONFLICT DO NOTHING",
        comment_id,
        user_id,
        emoji,
    )
    return status.endswith(" 1")


async def remove_reaction(
    conn: asyncpg.Connection, comment_id: str, user_id: str, emoji: str
) -> bool:
    status = await conn.execute(
        "DELETE FROM comment_reactions WHERE comment_id = $1 AND user_id = $2 AND emoji = $3",
        comment_id,
        user_id,
        emoji,
    )
    return status.endswith(" 1")


async def known_members(db: Executor, workspace_id: str, user_ids: list[str]) -> set[str]:
    """Which of `user_ids` are members of the workspace (mentions of anyone else are dropped)."""
    rows = await db.fetch(
        "SELECT user_id FROM workspace_members WHERE workspace_id = $1"
        " AND user_id = ANY($2::uuid[])",
        workspace_id,
        user_ids,
    )
    return {str(r["user_id"]) for r in rows}
