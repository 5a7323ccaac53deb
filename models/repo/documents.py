"""Data access for document headers (pages in pages) and their versions.

Functions that take `conn` run inside the caller's transaction (an action in `services/documents.py`
or `services/versions.py`); those that take `db` are single reads. Every list is one query.
"""

from __future__ import annotations

from typing import Any

import asyncpg

from models.db import Database, Executor
from models.locks import LockNamespace, xact_lock

DOCUMENT_COLUMNS = (
    "d.id, d.workspace_id, d.board_id, d.parent_id, d.title, d.is_private, d.fragment,"
    " d.created_by, d.created_at, d.updated_at"
)
VERSION_COLUMNS = "v.id, v.document_id, v.seq, v.kind, v.name, v.created_by, v.created_at"
# Page trees are walked with recursive CTEs; this bounds a walk even if a cycle slipped in.
MAX_PAGE_DEPTH = 1000


def _row(record: asyncpg.Record | None) -> dict[str, Any] | None:
    return None if record is None else dict(record)


# --- documents ----------------------------------------------------------------------------------


async def insert_document(
    conn: asyncpg.Connection,
    *,
    workspace_id: str,
    board_id: str | None,
    parent_id: str | None,
    title: str,
    is_private: bool | None,
    created_by: str,
    fragment: str | None = None,
) -> dict[str, Any]:
    row = await conn.fetchrow(
        "INSERT INTO documents AS d"
        " (workspace_id, board_id, parent_id, title, is_private, created_by, fragment)"
        f" VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING {DOCUMENT_COLUMNS}",
        workspace_id,
        board_id,
        parent_id,
        title,
        is_private,
        created_by,
        fragment,
    )
    return dict(row)


async def get_document(db: Executor, doc_id: str) -> dict[str, Any] | None:
    return _row(
        await db.fetchrow(
            f"SELECT {DOCUMENT_COLUMNS} FROM documents d WHERE d.id = $1 AND d.deleted_at IS NULL",
            doc_id,
        )
    )


async def document_exists(db: Executor, doc_id: str) -> bool:
    """Deleted documents count: their log may still be snapshotted until they are purged."""
    return bool(await db.fetchval("SELECT EXISTS (SELECT 1 FROM documents WHERE id = $1)", doc_id))


async def update_document(
    conn: asyncpg.Connection, doc_id: str, changes: dict[str, Any]
) -> dict[str, Any] | None:
    """`changes` keys are column names chosen by the service (never raw client keys)."""
    allowed = {"title", "parent_id", "fragment"}
    if not set(changes) <= allowed:
        raise ValueError(f"not updatable: {sorted(set(changes) - allowed)}")
    sets = [f"{column} = ${i}" for i, column in enumerate(changes, start=2)]
    return _row(
        await conn.fetchrow(
            f"UPDATE documents d SET {', '.join(sets)}, updated_at = now()"
            f" WHERE d.id = $1 AND d.deleted_at IS NULL RETURNING {DOCUMENT_COLUMNS}",
            doc_id,
            *changes.values(),
        )
    )


async def set_privacy(conn: asyncpg.Connection, doc_id: str, is_private: bool | None) -> bool:
    updated = await conn.fetchval(
        "UPDATE documents SET is_private = $2, updated_at = now()"
        " WHERE id = $1 AND deleted_at IS NULL RETURNING id",
        doc_id,
        is_private,
    )
    return updated is not None


async def effective_privacy(db: Executor, doc_id: str) -> bool:
    """The nearest `is_private` that is not null up the page chain (none: not private)."""
    found = await db.fetchval(
        "WITH RECURSIVE chain (id, parent_id, is_private, depth) AS ("
        "  SELECT id, parent_id, is_private, 0 FROM documents WHERE id = $1"
        "  UNION ALL"
        "  SELECT p.id, p.parent_id, p.is_private, chain.depth + 1"
        "  FROM documents p JOIN chain ON p.id = chain.parent_id WHERE chain.depth < $2"
        ") SELECT is_private FROM chain WHERE is_private IS NOT NULL ORDER BY depth LIMIT 1",
        doc_id,
        MAX_PAGE_DEPTH,
    )
    return bool(found)


async def live_subtree(db: Executor, doc_id: str) -> list[str]:
    """The page and its live sub-pages, at any depth."""
    rows = await db.fetch(
        "WITH RECURSIVE sub (id, depth) AS ("
        "  SELECT id, 0 FROM documents WHERE id = $1 AND deleted_at IS NULL"
        "  UNION"
        "  SELECT d.id, sub.depth + 1 FROM documents d JOIN sub ON d.parent_id = sub.id"
        "  WHERE d.deleted_at IS NULL AND sub.depth < $2"
        ") SELECT id FROM sub",
        doc_id,
        MAX_PAGE_DEPTH,
    )
    return [str(r["id"]) for r in rows]


async def get_fragment(db: Executor, doc_id: str) -> str | None:
    """The fragment a document names (null: the setting's default); deleted documents too, so
    jobs that finish work on them read their content the same way."""
    return await db.fetchval("SELECT fragment FROM documents WHERE id = $1", doc_id)


async def lock_page_tree(conn: asyncpg.Connection, workspace_id: str) -> None:
    """Moves within one workspace's page tree run one at a time (cycle check + update), so two
    concurrent moves cannot make a cycle that each one alone would not."""
    await xact_lock(conn, LockNamespace.PAGE_TREE, workspace_id)


async def is_ancestor_or_self(conn: Executor, candidate: str, doc_id: str) -> bool:
    """Whether `candidate` is `doc_id` itself or one of its ancestors (live or deleted)."""
    return bool(
        await conn.fetchval(
            "WITH RECURSIVE up (id, parent_id, depth) AS ("
            "  SELECT id, parent_id, 0 FROM documents WHERE id = $2"
            "  UNION ALL"
            "  SELECT d.id, d.parent_id, up.depth + 1 FROM documents d"
            "  JOIN up ON d.id = up.parent_id WHERE up.depth < $3"
            ") SELECT EXISTS (SELECT 1 FROM up WHERE id = $1)",
            candidate,
            doc_id,
            MAX_PAGE_DEPTH,
        )
    )


async def soft_delete_subtree(conn: asyncpg.Connection, doc_id: str) -> list[str]:
    """Soft-delete a page and its live sub-pages (one timestamp, so they can be undeleted
    together); returns the ids deleted."""
    rows = await conn.fetch(
        "WITH RECURSIVE sub (id) AS ("
        "  SELECT id FROM documents WHERE id = $1 AND deleted_at IS NULL"
        "  UNION"
        "  SELECT d.id FROM documents d JOIN sub ON d.parent_id = sub.id"
        "  WHERE d.deleted_at IS NULL"
        ") UPDATE documents SET deleted_at = now(), updated_at = now()"
        " WHERE id IN (SELECT id FROM sub) RETURNING id",
        doc_id,
    )
    return [str(r["id"]) for r in rows]


async def board_workspace(db: Executor, board_id: str) -> str | None:
    workspace_id = await db.fetchval(
        "SELECT workspace_id FROM boards WHERE id = $1 AND deleted_at IS NULL", board_id
    )
    return None if workspace_id is None else str(workspace_id)


# --- versions -----------------------------------------------------------------------------------


async def insert_version(
    conn: Executor,
    doc_id: str,
    *,
    seq: int,
    state: bytes,
    kind: str,
    name: str | None,
    created_by: str | None,
) -> dict[str, Any] | None:
    """None when a 'restore' version for this seq exists already (a retried restore)."""
    return _row(
        await conn.fetchrow(
            "INSERT INTO document_versions AS v (document_id, seq, state, kind, name, created_by)"
            " VALUES ($1, $2, $3, $4, $5, $6)"
            " ON CONFLICT (document_id, seq) WHERE kind = 'restore' DO NOTHING"
            f" RETURNING {VERSION_COLUMNS}",
            doc_id,
            seq,
            state,
            kind,
            name,
            created_by,
        )
    )


async def list_versions(db: Database, doc_id: str, limit: int, offset: int) -> list[dict]:
    rows = await db.fetch(
        f"SELECT {VERSION_COLUMNS} FROM document_versions v WHERE v.document_id = $1"
        " ORDER BY v.created_at DESC, v.seq DESC, v.id LIMIT $2 OFFSET $3",
        doc_id,
        limit,
        offset,
    )
    return [dict(r) for r in rows]


async def get_version(db: Executor, doc_id: str, version_id: str) -> dict[str, Any] | None:
    """The version with its state, only if it belongs to `doc_id` (no cross-document reads)."""
    return _row(
        await db.fetchrow(
            f"SELECT {VERSION_COLUMNS}, v.state FROM document_versions v"
            " WHERE v.id = $1 AND v.document_id = $2",
            version_id,
            doc_id,
        )
    )


async def previous_version_seq(db: Executor, doc_id: str, seq: int) -> int:
    """The seq of the newest version before `seq` (0: none)."""
    found = await db.fetchval(
        "SELECT max(seq) FROM document_versions WHERE document_id = $1 AND seq < $2", doc_id, seq
    )
    return int(found or 0)


async def get_restore_version(db: Executor, doc_id: str, seq: int) -> dict[str, Any] | None:
    return _row(
        await db.fetchrow(
            f"SELECT {VERSION_COLUMNS} FROM document_versions v"
            " WHERE v.document_id = $1 AND v.seq = $2 AND v.kind = 'restore'",
            doc_id,
            seq,
        )
    )


async def last_auto_version(conn: Executor, doc_id: str) -> dict[str, Any] | None:
    return _row(
        await conn.fetchrow(
            f"SELECT {VERSION_COLUMNS} FROM document_versions v"
            " WHERE v.document_id = $1 AND v.kind = 'auto'"
            " ORDER BY v.created_at DESC LIMIT 1",
            doc_id,
        )
    )


async def prune_auto_versions(conn: Executor, doc_id: str, keep: int, max_age_s: float = 0) -> int:
    """Delete all but the newest `keep` automatic versions, and (`max_age_s` > 0) those older
    than that, the newest one excepted; returns how many went. Named and restore versions are
    never touched."""
    status = await conn.execute(
        "DELETE FROM document_versions WHERE id IN ("
        "  SELECT id FROM (SELECT id, created_at,"
        "    row_number() OVER (ORDER BY created_at DESC, seq DESC) AS n"
        "    FROM document_versions WHERE document_id = $1 AND kind = 'auto') ranked"
        "  WHERE n > $2 OR ($3 > 0 AND n > 1 AND created_at < now() - make_interval(secs => $3)))",
        doc_id,
        keep,
        float(max_age_s),
    )
    return int(status.split()[-1])


async def documents_over_retention(
    conn: Executor, keep: int, max_age_s: float, after: str | None, limit: int
) -> list[str]:
    """Documents (in id order, after `after`) holding automatic versions the policy drops."""
    rows = await conn.fetch(
        "SELECT document_id FROM document_versions WHERE kind = 'auto'"
        " AND ($4::uuid IS NULL OR document_id > $4::uuid)"
        " GROUP BY document_id HAVING count(*) > $1 OR ($2 > 0 AND count(*) > 1"
        "  AND min(created_at) < now() - make_interval(secs => $2))"
        " ORDER BY document_id LIMIT $3",
        keep,
        float(max_age_s),
        limit,
        after,
    )
    return [str(r["document_id"]) for r in rows]


# --- grants -------------------------------------------------------------------------------------

GRANT_COLUMNS = "g.user_id, g.role, g.granted_by, g.created_at, u.email, u.display_name"


async def list_grants(db: Executor, doc_id: str) -> list[dict[str, Any]]:
    rows = await db.fetch(
        f"SELECT {GRANT_COLUMNS} FROM document_grants g JOIN users u ON u.id = g.user_id"
        " WHERE g.document_id = $1 ORDER BY g.created_at, g.user_id",
        doc_id,
    )
    return [dict(r) for r in rows]


async def is_workspace_member(db: Executor, workspace_id: str, user_id: str) -> bool:
    return bool(
        await db.fetchval(
            "SELECT EXISTS (SELECT 1 FROM workspace_members"
            " WHERE workspace_id = $1 AND user_id = $2)",
            workspace_id,
            user_id,
        )
    )


async def grant_role(db: Executor, doc_id: str, user_id: str) -> str | None:
    """The user's explicit role on the document, None without a grant."""
    role = await db.fetchval(
        "SELECT role FROM document_grants WHERE document_id = $1 AND user_id = $2",
        doc_id,
        user_id,
    )
    return None if role is None else str(role)


async def upsert_grant(
    conn: asyncpg.Connection, doc_id: str, user_id: str, role: str, granted_by: str
) -> dict[str, Any]:
    await conn.execute(
        "INSERT INTO document_grants (document_id, user_id, role, granted_by)"
        " VALUES ($1, $2, $3, $4)"
        " ON CONFLICT (document_id, user_id) DO UPDATE SET role = EXCLUDED.role,"
        " granted_by = EXCLUDED.granted_by",
        doc_id,
        user_id,
        role,
        granted_by,
    )
    row = await conn.fetchrow(
        f"SELECT {GRANT_COLUMNS} FROM document_grants g JOIN users u ON u.id = g.user_id"
        " WHERE g.document_id = $1 AND g.user_id = $2",
        doc_id,
        user_id,
    )
    return dict(row)


async def delete_grant(conn: asyncpg.Connection, doc_id: str, user_id: str) -> bool:
    status = await conn.execute(
        "DELETE FROM document_grants WHERE document_id = $1 AND user_id = $2", doc_id, user_id
    )
    return status.endswith(" 1")
