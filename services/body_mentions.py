"""Mentions in document bodies: found in the CRDT updates as they arrive, each notified once.

**When.** The projection refresher (services/projection_refresher.py) already wakes on every
update of a document (a NATS queue group: one node per update) and re-reads the document within
`COLLAB_PROJECTION_REFRESH_S` (2 s); after the blocks it calls `scan`, so a mention an editor types
reaches the mentioned user's inbox within seconds — not a periodic diff of every document, not the
automatic versions.

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

import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from uuid import UUID

import asyncpg
import structlog

from bus.doc_log import LogEntry
from core.yjs import merge
from models.mentions import NO_ACCESS, NOTIFIED, SILENT
from models.notifications import DOCUMENT_MENTION, DOCUMENT_MENTION_NO_ACCESS
from models.repo import document_mentions as repo
from models.repo import documents as documents_repo
from models.repo.document_mentions import SeenMention
from services import policy
from services.block_tree import Block, walk
from services.doc_content import block_tree
from services.doc_state import DocState
from services.notifications import NotificationDraft, notify
from services.policy import Action, Resource
from services.unit_of_work import UnitOfWork, unit_of_work
from services.ydoc_roots import bind_roots

if TYPE_CHECKING:
    from services.deps import Deps

log = structlog.get_logger(__name__)

MENTION_NODE = "mention"
USER_PROP = "user"
# Bytes an update holds when it creates a mention node or changes its `user` attribute.
_TOUCH_MARKERS = (MENTION_NODE.encode(), USER_PROP.encode())
# Server writes that copy content nobody typed now (services/doc_writes.py, duplicate_document).
SILENT_CLIENTS = frozenset({"server:restore", "server:duplicate"})
BASELINE = -1  # a scan cursor that records what is there silently (migration 0018)
EXCERPT_CHARS = 200  # the notification previews the block, it does not copy it

Pair = tuple[str, str]  # (block id, user id)


# --- pure: finding mentions --------------------------------------------------------------------


def _canonical_uuid(value: Any) -> str | None:
    try:
        return str(uuid.UUID(value)) if isinstance(value, str) else None
    except ValueError:
        return None


def _mentioned(content: Any) -> Iterator[str]:
    """User ids of the mention nodes in a block's content (inline runs, links, table cells)."""
    if isinstance(content, dict):  # a table
        for row in content.get("rows", []):
            for cell in row.get("cells", []):
                yield from _mentioned(cell.get("content") if isinstance(cell, dict) else cell)
        return
    for item in content if isinstance(content, list) else []:
        if not isinstance(item, dict):
            continue
        if item.get("type") == MENTION_NODE:
            user = _canonical_uuid((item.get("props") or {}).get(USER_PROP))
            if user is not None:
                yield user
        elif isinstance(item.get("content"), list):
            yield from _mentioned(item["content"])


def mentions_in(blocks: list[Block]) -> dict[Pair, Block]:
    """Every (block id, user id) mention of a block tree, with its block."""
    found: dict[Pair, Block] = {}
    for block, _parent, _position, _path in walk(blocks):
        for user in _mentioned(block.content):
            found.setdefault((block.id, user), block)
    return found


def read_mentions(update: bytes, fragment: str) -> dict[Pair, Block]:
    return mentions_in(block_tree(bind_roots(update), fragment).blocks)


def may_touch_mentions(update: bytes) -> bool:
    return any(marker in update for marker in _TOUCH_MARKERS)


def first_seen(
    base: bytes, entries: list[LogEntry], fragment: str, wanted: set[Pair]
) -> dict[Pair, LogEntry]:
    """For each wanted pair, the first entry after which the document holds it, replayed from
    `base`; the document is read only after entries that may touch mentions."""
    found: dict[Pair, LogEntry] = {}
    state, pending = base, []
    for entry in entries:
        pending.append(entry.update)
        if not may_touch_mentions(entry.update):
            continue
        state, pending = merge([state, *pending]), []
        for pair in (wanted & read_mentions(state, fragment).keys()) - found.keys():
            found[pair] = entry
        if len(found) == len(wanted):
            break
    return found


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

    def base(self) -> bytes:
        """The document as the cursor left it."""
        seen = (e.update for e in self.state.entries if e.seq <= self.after)
        return merge([self.state.snapshot_update, *seen])


@dataclass(frozen=True)
class _Found:
    """One new pair with what decides its outcome: the entry that brought it (None: unknown)."""

    block_id: str
    user_id: str
    block: Block
    entry: LogEntry | None
    baseline: bool
    seq: int

    def author(self, active: set[str]) -> str | None:
        user = _canonical_uuid(self.entry.user) if self.entry is not None else None
        return user if user in active else None

    @property
    def copied(self) -> bool:
        return self.entry is not None and self.entry.client in SILENT_CLIENTS


async def scan(ctx: Deps, doc_id: str, state: DocState) -> list[SeenMention]:
    """Record and notify the mentions `state` brings that the document had not held; the new
    rows (empty when nothing was new or another scan got there first)."""
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
    found = await _new_mentions(ctx, document, window)
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


async def _new_mentions(ctx: Deps, document: dict[str, Any], window: _Window) -> list[_Found]:
    """The pairs the document holds now and `document_mentions` does not, with their entries."""
    doc_id = str(document["id"])
    fragment = document["fragment"] or ctx.settings.content_fragment
    present = read_mentions(window.state.update, fragment)
    new = present.keys() - await repo.seen_pairs(ctx.db, doc_id)
    entries: dict[Pair, LogEntry] = {}
    if new and window.replayable:
        entries = first_seen(window.base(), window.entries, fragment, set(new))
    return [
        _Found(
            block_id=pair[0],
            user_id=pair[1],
            block=present[pair],
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
    return sorted(filter(None, map(_canonical_uuid, ids)))


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
        data["excerpt"] = found.block.text[:EXCERPT_CHARS]
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
