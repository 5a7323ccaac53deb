"""Who wrote a version: the users whose updates it contains, taken from the document log.

Every log entry carries `Collab-User` (the socket's user, or the REST caller for server writes).
Compaction purges entries, so the snapshot job first records them as spans (`spans_of`, stored in
`document_author_spans` in the snapshot's transaction); what the log still holds after the last
snapshot is read directly. A version at seq S then has:

* `authors`: users with an update at seq ≤ S (everything the version contains);
* `edited_by`: users with an update in (P, S], P the previous version's seq (what changed since).

Span granularity: a user's span is (first, last) seq within one snapshot batch, so `edited_by`
can name a user whose updates in that batch fell on both sides of the window but not inside it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from bus.doc_log import LogEntry
from models.repo import doc_content as content_repo
from models.repo import doc_snapshots
from services.document_entities import Authors, Person

if TYPE_CHECKING:
    from services.deps import Deps

Span = tuple[str, int, int]


def spans_of(entries: list[LogEntry]) -> list[Span]:
    """(user, first seq, last seq) per user of a batch of log entries, in first-seq order."""
    spans: dict[str, list[int]] = {}
    for entry in entries:
        if not entry.user:
            continue
        span = spans.setdefault(entry.user, [entry.seq, entry.seq])
        span[0], span[1] = min(span[0], entry.seq), max(span[1], entry.seq)
    return sorted(((user, s[0], s[1]) for user, s in spans.items()), key=lambda s: (s[1], s[0]))


def users_in(spans: list[Span], after: int, upto: int) -> list[str]:
    """Users with a span meeting (after, upto], ordered by their first seq."""
    first: dict[str, int] = {}
    for user, start, end in spans:
        if start <= upto and end > after:
            first[user] = min(first.get(user, start), start)
    return sorted(first, key=lambda user: (first[user], user))


async def spans_through(ctx: Deps, doc_id: str, upto: int) -> list[Span]:
    """Recorded spans plus the log after the last snapshot, up to seq `upto`."""
    recorded = await content_repo.author_spans(ctx.db, doc_id, upto)
    snapshot_seq = await doc_snapshots.get_snapshot_seq(ctx.db, doc_id)
    tail: list[LogEntry] = []
    if upto > snapshot_seq:
        entries = await ctx.doc_log.read(doc_id, snapshot_seq)
        tail = [e for e in entries if e.seq <= upto]
    return recorded + spans_of(tail)


async def version_authors(ctx: Deps, doc_id: str, seq: int, previous_seq: int) -> Authors:
    spans = await spans_through(ctx, doc_id, seq)
    authors = users_in(spans, 0, seq)
    edited = users_in(spans, previous_seq, seq)
    names = await content_repo.display_names(ctx.db, authors)

    def people(users: list[str]) -> tuple[Person, ...]:
        return tuple(Person(user, names.get(user)) for user in users)

    return Authors(people(authors), people(edited))
