"""The `cleanup_expired_sessions` job: the bookkeeping of logins that can no longer be used.

Each part deletes at most `ROWS_PER_RUN` rows (a run is bounded however much piled up; the next run
takes the rest) and deletes only what decides nothing any more, so a run at any moment, or two in
a row, changes no answer:

* refresh tokens expired more than an access-token lifetime ago (their signature check refuses
  them before any lookup);
* sessions (refresh-token families) with no refresh token alive within an access-token lifetime,
  revoked ones only once their revocation is older than that — a younger revocation still rejects
  the session's last access tokens;
* denylisted access tokens past their expiry (Postgres rows) and the Redis copy's expired marks
  (`Denylist.prune`, the former `prune_denylist` job);
* expired password-reset / email-verification tokens (`account_tokens`, once that table exists);
* presence entries whose node died without removing them (Redis; each entry carries its expiry).

Redis down: the Postgres parts still run; the Redis ones count as skipped (`redis_skipped`: 1).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from models.cache import CacheUnavailable
from models.presence_store import prune_expired
from models.repo import job_runs
from models.repo import sessions as sessions_repo

if TYPE_CHECKING:
    from services.deps import Deps

CLEANUP_SESSIONS_JOB = "cleanup_expired_sessions"
CLEANUP_SESSIONS_EVERY_S = 600.0
ROWS_PER_RUN = 5000
# Presence keys looked at per run; the SCAN cursor is kept in `job_states` for the next run.
PRESENCE_KEYS_PER_RUN = 5000
PRESENCE_MATCH = "presence:*"


async def cleanup_expired_sessions(ctx: Deps) -> dict[str, int]:
    grace = ctx.settings.access_token_ttl_s
    counts = {
        "refresh_tokens": await sessions_repo.delete_expired_refresh_tokens(
            ctx.db, grace, ROWS_PER_RUN
        ),
        "sessions": await sessions_repo.delete_dead_families(ctx.db, grace, ROWS_PER_RUN),
        "denylist_rows": await sessions_repo.delete_expired_denylist_rows(ctx.db, ROWS_PER_RUN),
    }
    account_tokens = await sessions_repo.delete_expired_account_tokens(ctx.db, ROWS_PER_RUN)
    if account_tokens is not None:
        counts["account_tokens"] = account_tokens
    try:
        counts["denylist_marks"] = await ctx.denylist.prune()
        counts["presence_entries"] = await _prune_presence(ctx)
    except CacheUnavailable:
        counts["redis_skipped"] = 1
    return counts


async def _prune_presence(ctx: Deps) -> int:
    saved = await job_runs.get_cursor(ctx.db, CLEANUP_SESSIONS_JOB)
    cursor, _seen, removed = await prune_expired(
        ctx.cache, PRESENCE_MATCH, int(saved or 0), PRESENCE_KEYS_PER_RUN
    )
    await job_runs.set_cursor(ctx.db, CLEANUP_SESSIONS_JOB, str(cursor) if cursor else None)
    return removed
