"""Mentions in document bodies: found in the CRDT updates as they arrive, each notified once.

**When.** The projection refresher (services/projection_refresher.py) already wakes on every
update of a document (on the node that published it) and re-reads the document within
`COLLAB_PROJECTION_REFRESH_S` (2 s); after the blocks it calls `scan` with the mentions the
projection found, so a mention an editor types reaches the mentioned user's inbox within seconds —
not a periodic diff of every document, not the automatic versions. Reading mentions from a state
(services/mention_finder.py) is CPU work and runs in the projection worker
(services/projection_worker.py), like the projection.

**What is a mention.** The editor's `mention` inline node (a BlockNote custom inline content,
`tests/js/product_schema.mjs`: `<mention user="<user id>">` inside a block's content node), read
by `services/block_tree.py` as `{"type": "mention", "props": {"user": …}}`. The pair (block id,
user id) is the mention; user values that are not UUIDs of active users are ignored.

**Once.** A pair not in `document_mentions` is new. Its row is inserted in the unit of work that
notifies (`ON CONFLICT DO NOTHING`: only the inserter notifies), so two nodes scanning the same
document, a retried scan or a restart never notify twice. Rows stay when the mention is deleted:
deleting and retyping the same user in the same block, moving the block (ids survive moves),
undo and restore are silent; the same user mentioned in another block is a new mention.

**By whom.** The author is the `Collab-User` of the log entry that brought the pair. The scan
replays the entries after the document's cursor (`document_mention_scans`), reading the mentions
only after entries that can have touched one: Yjs writes type names and attribute keys as plain
strings, so an update that creates a mention node or sets its `user` holds those bytes. A window
without such an entry (plain typing) is not read at all. (An update Yjs keeps pending until a
missing earlier one arrives would escape that filter; editors publish their own updates in order
and see others' only after the log has them, so the server never sees one.)

**To whom.** `document.mention` goes to users who may view the document (the policy, read in the
scan's transaction). A mention of an active user who may not is recorded `no_access` and reported
to its author as `document.mention_no_access` — the document (theirs to see) and the user id they
wrote, nothing about the user or anything that user may see. Silent (recorded, nobody told): a
mention of yourself; what a restore or a duplicated page brought (nobody typed it); what documents
held before detection existed (cursor -1, migration 0018). A mention whose entry was compacted
before a scan saw it (a missed NATS delivery, then a snapshot) has no known author: the user is
still notified, without an actor, and a no-access one reported to nobody.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from uuid import UUID

import asyncpg
import structlog

from bus.doc_log import LogEntry
from models.mentions import NO_ACCESS, NOTIFIED, SILENT
from models.notifications import DOCUMENT_MENTION, DOCUMENT_MENTION_NO_ACCESS
from models.repo import document_mentions as repo
from models.repo import documents as documents_repo
from models.repo.document_mentions import SeenMention
from services import policy
from services.doc_state import DocState
from services.mention_finder import Pair, canonical_uuid, may_touch_mentions, mentions_in
from services.notifications import NotificationDraft, notify
from services.policy import Action, Resource
from services.projection_compute import Projection, first_mentioned, mentions_of
from services.unit_of_work import UnitOfWork, unit_of_work

if TYPE_CHECKING:
    from services.deps import Deps

__all__ = ["may_touch_mentions", "mentions_in", "scan"]

log = structlog.get_logger(__name__)

# Server writes that copy content nobody typed now (services/doc_writes.py, duplicate_document).
SILENT_CLIENTS = frozenset({"server:restore", "server:duplicate"})
BASELINE = -1  # a scan cursor that records what is there silently (migration 0018)
EXCERPT_CHARS = 200  # the notification previews the block, it does not copy it


# --- the scan ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Window:
    """What a scan of `state` has not seen yet: the log entries after the document's cursor."""

    cursor: int | None  # None: never scanned; BASELINE: record silently
    state: DocState

    @property
    def after(self) -> int:
        return max(self.cursor or 0, 0)

    @property
    def baseline(self) -> bool:
        return self.cursor == BASELINE

    @property
    def entries(self) -> list[LogEntry]:
        return [entry for entry in self.state.entries if entry.seq > self.after]

    @property
    def replayable(self) -> bool:
        """The entries since the cursor are all still in the log (no snapshot compacted any)."""
        return self.after >= self.state.snapshot_seq and not self.baseline

    def base(self) -> list[bytes]:
        """The document as the cursor left it, as the updates to merge (in the worker)."""
        seen = [e.update for e in self.state.entries if e.seq <= self.after]
        return [self.state.snapshot_update, *seen]


@dataclass(frozen=True)
class _Found:
    """One new pair with what decides its outcome: the entry that brought it (None: unknown)."""

    block_id: str
    user_id: str
    text: str  # the block's plain text
    entry: LogEntry | None
    baseline: bool
    seq: int

    def author(self, active: set[str]) -> str | None:
        user = canonical_uuid(self.entry.user) if self.entry is not None else None
        return user if user in active else None

    @property
    def copied(self) -> bool:
        return self.entry is not None and self.entry.client in SILENT_CLIENTS


async def scan(
    ctx: Deps, doc_id: str, state: DocState, projection: Projection | None = None
) -> list[SeenMention]:
    """Record and notify the mentions `state` brings that the document had not held; the new
    rows (empty when nothing was new or another scan got there first). `projection`: the one
    just computed from `state` (the refresher's), whose mentions are used instead of reading the
    state again."""
    cursor = await repo.scan_seq(ctx.db, doc_id)
    if cursor is not None and cursor >= state.seq:
        return []
    window = _Window(cursor, state)
    if window.replayable and not any(may_touch_mentions(e.update) for e in window.entries):
        await repo.advance_scan(ctx.db, doc_id, state.seq)
        return []
    document = await documents_repo.get_document(ctx.db, doc_id)
    if document is None:  # deleted meanwhile: nobody is to hear about it
        return []
    found = await _new_mentions(ctx, document, window, projection)
    active = await repo.active_users(ctx.db, _people(found))
    settled = []
    async with unit_of_work(ctx) as uow:
        # One order for every scan: two nodes inserting the same pairs cannot deadlock.
        for item in sorted(found, key=lambda f: (f.block_id, f.user_id)):
            if item.user_id in active:
                mention = await _settle(uow, document, item, active)
                settled.extend([mention] if mention is not None else [])
        await repo.advance_scan(uow.conn, doc_id, state.seq)
    if settled:
        log.info("mentions.found", doc_id=doc_id, outcomes=[m.outcome for m in settled])
    return settled


async def _new_mentions(
    ctx: Deps, document: dict[str, Any], window: _Window, projection: Projection | None
) -> list[_Found]:
    """The pairs the document holds now and `document_mentions` does not, with their entries.
    Reading the state (and replaying the window) is CPU work: the projection worker's."""
    doc_id = str(document["id"])
    fragment = document["fragment"] or ctx.settings.content_fragment
    worker = ctx.projection_worker
    if projection is not None and projection.fragment == fragment:
        present = projection.mentions
    else:
        present = await worker.run(mentions_of, window.state.update, fragment)
    new = present.keys() - await repo.seen_pairs(ctx.db, doc_id)
    entries: dict[Pair, LogEntry] = {}
    if new and window.replayable:
        replayed = window.entries
        updates = [entry.update for entry in replayed]
        first = await worker.run(first_mentioned, window.base(), updates, fragment, set(new))
        entries = {pair: replayed[index] for pair, index in first.items()}
    return [
        _Found(
            block_id=pair[0],
            user_id=pair[1],
            text=present[pair],
            entry=entries.get(pair),
            baseline=window.baseline,
            seq=entries[pair].seq if pair in entries else window.state.seq,
        )
        for pair in new
    ]


def _people(found: list[_Found]) -> list[str]:
    """Mentioned users and authors, as UUIDs (the log's `Collab-User` may name a tool)."""
    ids = {item.user_id for item in found}
    ids |= {item.entry.user for item in found if item.entry is not None and item.entry.user}
    return sorted(filter(None, map(canonical_uuid, ids)))


async def _settle(
    uow: UnitOfWork, document: dict[str, Any], found: _Found, active: set[str]
) -> SeenMention | None:
    doc_id = str(document["id"])
    author = found.author(active)
    if found.baseline or found.copied or author == found.user_id:
        outcome = SILENT
    elif await _may_view(uow.conn, found.user_id, doc_id):
        outcome = NOTIFIED
    else:
        outcome = NO_ACCESS
    mention = SeenMention(doc_id, found.block_id, found.user_id, author, found.seq, outcome)
    if not await repo.record(uow.conn, mention):
        return None
    if outcome == NOTIFIED:
        await notify(uow, _draft(document, found, DOCUMENT_MENTION, found.user_id, author))
    elif outcome == NO_ACCESS and author is not None:
        await notify(uow, _draft(document, found, DOCUMENT_MENTION_NO_ACCESS, author, None))
    return mention


async def _may_view(conn: asyncpg.Connection, user_id: str, doc_id: str) -> bool:
    facts = await policy.load_facts(conn, user_id, Resource.document(doc_id))
    return facts is not None and policy.decide(facts).allows(Action.DOCUMENT_VIEW)


def _draft(
    document: dict[str, Any], found: _Found, kind: str, recipient: str, actor: str | None
) -> NotificationDraft:
    data: dict[str, Any] = {"title": document["title"], "block_id": found.block_id}
    if kind == DOCUMENT_MENTION:
        data["excerpt"] = found.text[:EXCERPT_CHARS]
    else:  # to the author: which id they wrote has no access, nothing more
        data["mentioned_user_id"] = found.user_id
    return NotificationDraft(
        recipient_id=UUID(recipient),
        kind=kind,
        actor_id=None if actor is None else UUID(actor),
        workspace_id=UUID(str(document["workspace_id"])),
        document_id=UUID(str(document["id"])),
        data=data,
    )
