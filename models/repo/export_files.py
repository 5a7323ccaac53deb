"""Data access for background exports (`exports`, models/exports.py)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from models.db import Executor
from models.exports import EXPIRED, FAILED, PENDING, READY

# Everything but the file: status reads never pull a body of megabytes.
META_COLUMNS = (
    "id, requested_by, workspace_id, document_id, format, version_id, seq, comments, status,"
    " filename,"
    " content_type, size_bytes, error, attempts, created_at, finished_at, expires_at"
)


@dataclass(frozen=True)
class NewExport:
    requested_by: str
    workspace_id: str
    document_id: str | None
    format: str
    version_id: str | None
    seq: int | None
    comments: bool = False


@dataclass(frozen=True)
class StoredFile:
    body: bytes
    filename: str
    content_type: str


def _row(record: Any) -> dict[str, Any] | None:
    return None if record is None else dict(record)


async def insert(db: Executor, new: NewExport) -> dict[str, Any]:
    row = await db.fetchrow(
        "INSERT INTO exports (requested_by, workspace_id, document_id, format, version_id, seq,"
        f" comments, status) VALUES ($1, $2, $3, $4, $5, $6, $7, '{PENDING}')"
        f" RETURNING {META_COLUMNS}",
        new.requested_by,
        new.workspace_id,
        new.document_id,
        new.format,
        new.version_id,
        new.seq,
        new.comments,
    )
    assert row is not None  # INSERT … RETURNING always returns the row
    return dict(row)


async def get(db: Executor, export_id: str) -> dict[str, Any] | None:
    return _row(await db.fetchrow(f"SELECT {META_COLUMNS} FROM exports WHERE id = $1", export_id))


async def file_of(db: Executor, export_id: str) -> StoredFile | None:
    row = await db.fetchrow(
        f"SELECT body, filename, content_type FROM exports WHERE id = $1 AND status = '{READY}'",
        export_id,
    )
    if row is None or row["body"] is None:
        return None
    return StoredFile(bytes(row["body"]), str(row["filename"]), str(row["content_type"]))


async def next_pending(db: Executor, max_attempts: int) -> dict[str, Any] | None:
    """The oldest export still to make (one that failed `max_attempts` times is left alone)."""
    return _row(
        await db.fetchrow(
            f"SELECT {META_COLUMNS} FROM exports WHERE status = '{PENDING}' AND attempts < $1"
            " ORDER BY created_at, id LIMIT 1",
            max_attempts,
        )
    )


async def mark_ready(
    db: Executor, export_id: str, file: StoredFile, expires_at: datetime
) -> dict[str, Any] | None:
    """Store the file; None if the export is no longer pending (another run finished it)."""
    return _row(
        await db.fetchrow(
            f"UPDATE exports SET status = '{READY}', body = $2::bytea, filename = $3, content_type = $4,"
            " size_bytes = octet_length($2::bytea), finished_at = now(), expires_at = $5, error = NULL"
            f" WHERE id = $1 AND status = '{PENDING}' RETURNING {META_COLUMNS}",
            export_id,
            file.body,
            file.filename,
            file.content_type,
            expires_at,
        )
    )


async def mark_failed(db: Executor, export_id: str, error: str) -> None:
    await db.execute(
        f"UPDATE exports SET status = '{FAILED}', error = $2, finished_at = now()"
        f" WHERE id = $1 AND status = '{PENDING}'",
        export_id,
        error,
    )


async def count_attempt(db: Executor, export_id: str, error: str) -> int:
    """A run that broke on something that may pass (a service down): counted, left pending."""
    attempts = await db.fetchval(
        "UPDATE exports SET attempts = attempts + 1, error = $2 WHERE id = $1 RETURNING attempts",
        export_id,
        error,
    )
    return int(attempts or 0)


async def pending_count(db: Executor, user_id: str) -> int:
    return int(
        await db.fetchval(
            f"SELECT count(*) FROM exports WHERE requested_by = $1 AND status = '{PENDING}'",
            user_id,
        )
    )


async def forget_old(db: Executor, keep_s: float) -> int:
    """Rows of exports that expired or failed more than `keep_s` ago: their 410 has been
    answered long enough, the table does not grow forever."""
    status = await db.execute(
        f"DELETE FROM exports WHERE status IN ('{EXPIRED}', '{FAILED}')"
        " AND coalesce(expires_at, finished_at) < now() - make_interval(secs => $1)",
        keep_s,
    )
    return int(status.split()[-1])


async def expire_due(db: Executor) -> int:
    """Drop the files whose time is up; the rows stay (a late download is told 410)."""
    status = await db.execute(
        f"UPDATE exports SET status = '{EXPIRED}', body = NULL"
        f" WHERE status = '{READY}' AND expires_at <= now()"
    )
    return int(status.split()[-1])
