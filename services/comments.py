"""Comment threads on documents and cards: create, reply, edit, delete, resolve, react.

A thread is its top comment plus one level of replies (`models/comments.py`). Who may do what is
the policy's (`services/policy.py`), per kind of target:

| | document thread | card thread |
| --- | --- | --- |
| read | `document:view` | `board:view` |
| start a thread, reply, resolve/reopen, react | `document:comment` | `board:comment` |
| edit a comment | its author, with the comment right | same |
| delete a comment | its author with the comment right, or a moderator (`document:manage`) | `board:manage` |

Deleting keeps a tombstone (body gone, place kept). Mentions name users by id: ids that are not
members of the workspace are dropped silently; members who may not read the target are kept out
of every notification and reported back to the writer only (`unnotified_mentions`), never shown
to anyone else. Every write counts against the writer's per-minute budget
(`COLLAB_COMMENT_WRITES_PER_MIN`).
"""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any, Generic, Literal, Protocol, TypeVar

from bus.outbox import doc_event
from bus.schemas.comment_entities import REACTIONS, CommentSchema, ThreadSchema
from core.errors import Conflict, Forbidden, NotFound, ValidationFailed
from models.repo import cards as cards_repo
from models.repo import comments as repo
from models.repo import documents as documents_repo
from models.repo.comments import NewComment, NewThread, ThreadFilter
from models.repo.doc_content import display_names
from services import notifications, policy
from services.anchor_text import anchor_of, content_of
from services.board_changes import BoardChange, board_change
from services.comment_body import mentioned_ids, plain_text
from services.comment_entities import Comment, CommentRef, Thread, ThreadHead
from services.deps import Deps
from services.doc_content import ContentError
from services.doc_state import load_state
from services.notifications import NotificationDraft
from services.policy import Action, Resource
from services.ratelimit import RateLimiter
from services.unit_of_work import UnitOfWork, unit_of_work

# A thread is a conversation about one spot; hundreds of replies mean it should be a document.
MAX_COMMENTS_PER_THREAD = 500
MAX_QUOTED_CHARS = 1_000
# The comment's words in a notification (and its email): a preview, not a copy.
EXCERPT_CHARS = 280
RATE_WINDOW_S = 60
What = Literal["view", "comment", "moderate"]

_thread = ThreadSchema()
_comment = CommentSchema()


class CommentDeps(Deps, Protocol):
    """The node as comments use it: everything a domain action may use, plus the rate limiter."""

    @property
    def limiter(self) -> RateLimiter: ...


@dataclass(frozen=True)
class Target:
    """What a thread is about: a document or a card."""

    kind: Literal["document", "card"]
    id: str


@dataclass(frozen=True)
class Scope:
    """A target resolved to what the policy checks: the document, or the card's board."""

    resource: Resource
    document_id: str | None = None
    board_id: str | None = None
    card_id: str | None = None

    @property
    def on_document(self) -> bool:
        return self.resource.kind == "document"

    def action(self, what: What) -> Action:
        if self.on_document:
            return {
                "view": Action.DOCUMENT_VIEW,
                "comment": Action.DOCUMENT_COMMENT,
                "moderate": Action.DOCUMENT_MANAGE,
            }[what]
        return {
            "view": Action.BOARD_VIEW,
            "comment": Action.BOARD_COMMENT,
            "moderate": Action.BOARD_MANAGE,
        }[what]

    @classmethod
    def of_thread(cls, thread: ThreadHead) -> Scope:
        if thread.document_id is not None:
            doc_id = str(thread.document_id)
            return cls(Resource.document(doc_id), document_id=doc_id)
        return cls(
            Resource.board(str(thread.board_id)),
            board_id=str(thread.board_id),
            card_id=None if thread.card_id is None else str(thread.card_id),
        )


@dataclass(frozen=True)
class Anchor:
    """Where a document thread points: a block, optionally a text range inside it."""

    block_id: str
    # Yjs relative positions (`ThreadAnchor`): the client library's JSON, checked where it comes
    # in (`handlers/schemas/comments.RelativePositionSchema`), kept as it came.
    start: dict[str, Any] | None = None
    end: dict[str, Any] | None = None
    quoted_text: str | None = None


E = TypeVar("E", Thread, Comment)


@dataclass(frozen=True)
class Written(Generic[E]):
    """A write's result: the entity, and the mentioned members who cannot read it (told to the
    writer only: nobody is notified about a place they cannot see)."""

    entity: E
    unnotified_mentions: list[str]


# --- authorization ---------------------------------------------------------------------------


async def _scope_of(ctx: Deps, target: Target) -> Scope:
    if target.kind == "document":
        return Scope(Resource.document(target.id), document_id=target.id)
    card = await cards_repo.get_card_row(ctx.db, target.id)
    if card is None:
        raise NotFound("card not found")
    board_id = str(card["board_id"])
    return Scope(Resource.board(board_id), board_id=board_id, card_id=target.id)


async def _require(ctx: Deps, actor_id: str, scope: Scope, what: What) -> policy.Access:
    return await policy.require(ctx, actor_id, scope.action(what), scope.resource)


async def _thread_for(
    ctx: Deps, actor_id: str, thread_id: str, what: What
) -> tuple[ThreadHead, Scope]:
    row = await repo.get_thread(ctx.db, thread_id)
    if row is None:
        raise NotFound("thread not found")
    thread = ThreadHead.from_row(row)
    scope = Scope.of_thread(thread)
    await _require(ctx, actor_id, scope, what)
    return thread, scope


async def _comment_for(
    ctx: Deps, actor_id: str, comment_id: str, what: What
) -> tuple[CommentRef, ThreadHead, Scope]:
    row = await repo.get_comment(ctx.db, comment_id)
    if row is None:
        raise NotFound("comment not found")
    comment = CommentRef.from_row(row)
    thread, scope = await _thread_for(ctx, actor_id, str(comment.thread_id), what)
    return comment, thread, scope


async def _spend(ctx: CommentDeps, actor_id: str) -> None:
    await ctx.limiter.hit(
        f"comments:user:{actor_id}", ctx.settings.comment_writes_per_min, RATE_WINDOW_S
    )


# --- entities --------------------------------------------------------------------------------


async def load_thread(db: Any, thread_id: str) -> Thread:
    row = await repo.get_thread(db, thread_id)
    if row is None:
        raise NotFound("thread not found")
    comments = await repo.comments_of(db, [thread_id])
    return Thread.of(row, comments.get(thread_id, []))


async def _load_comment(db: Any, thread_id: str, comment_id: str) -> Comment:
    comments = await repo.comments_of(db, [thread_id])
    for row in comments.get(thread_id, []):
        if str(row["id"]) == comment_id:
            return Comment.from_row(row)
    raise NotFound("comment not found")


# --- mentions --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Mentions:
    members: list[str]  # stored on the comment: workspace members, in order of mention
    readers: list[str]  # members who may read the target (the ones to notify)
    unreadable: list[str]  # members who may not: reported to the writer


# A comment's `body` stays a plain dict here and below: it is the editor's rich-text JSON,
# open by nature, checked once where it comes in (`comment_body.CommentBodySchema`) and read by
# `comment_body`'s walkers, never by field in this module.
async def _mentions(ctx: Deps, workspace_id: str, scope: Scope, body: dict[str, Any]) -> Mentions:
    ids = mentioned_ids(body)
    members = await repo.known_members(ctx.db, workspace_id, ids) if ids else set()
    kept = [user_id for user_id in ids if user_id in members]
    view = scope.action("view")
    readers = [u for u in kept if await policy.can(ctx, u, view, scope.resource)]
    return Mentions(kept, readers, [u for u in kept if u not in readers])


async def _new_comment(
    ctx: Deps,
    thread_id: str,
    parent_id: str | None,
    author_id: str,
    body: dict[str, Any],
    m: Mentions,
) -> NewComment:
    names = await _names(ctx, m.members)
    return NewComment(thread_id, parent_id, author_id, body, plain_text(body, names), m.members)


async def _names(ctx: Deps, user_ids: list[str]) -> dict[str, str]:
    return await display_names(ctx.db, user_ids) if user_ids else {}


# --- the unit of work of a comment change ------------------------------------------------------


@dataclass
class CommentChange:
    """One comment change in its transaction, and the events it emits: document events
    (`collab.doc.<id>.event`) for document threads, board events (numbered in the board's
    sequence, the board row locked) for card threads — each published after the commit."""

    uow: UnitOfWork
    scope: Scope
    workspace_id: str
    actor_id: str | None
    board: BoardChange | None = None

    async def emit(self, event_type: str, thread_id: str, changed: Thread | Comment) -> None:
        """Emit `event_type` with the changed thread or comment as its entity schema dumps it."""
        entity = _thread.dump(changed) if isinstance(changed, Thread) else _comment.dump(changed)
        if self.board is not None:
            assert self.scope.board_id is not None
            await self.board.emit(self.scope.board_id, event_type, entity)
            return
        await self.uow.emit(
            doc_event(
                {
                    "id": str(uuid.uuid4()),
                    "type": event_type,
                    "document_id": self.scope.document_id,
                    "workspace_id": self.workspace_id,
                    "thread_id": thread_id,
                    "actor_id": self.actor_id,
                    "at": datetime.now(UTC).isoformat(),
                    "entity": entity,
                }
            )
        )

    async def notify(
        self,
        recipients: list[str],
        kind: str,
        thread_id: str,
        comment: Comment | None = None,
    ) -> None:
        """Tell each recipient (never the actor; never one who may not view the target, nor
        one who turned the kind off: `notifications.notify` decides)."""
        if not recipients:
            return
        data = {"title": await self._title()}
        if comment is not None and comment.text:
            data["excerpt"] = comment.text[:EXCERPT_CHARS]
        for recipient in recipients:
            await notifications.notify(
                self.uow,
                NotificationDraft(
                    recipient_id=uuid.UUID(recipient),
                    kind=kind,
                    actor_id=None if self.actor_id is None else uuid.UUID(self.actor_id),
                    workspace_id=uuid.UUID(self.workspace_id),
                    document_id=_uuid(self.scope.document_id),
                    board_id=_uuid(self.scope.board_id),
                    card_id=_uuid(self.scope.card_id),
                    thread_id=uuid.UUID(thread_id),
                    comment_id=None if comment is None else comment.id,
                    data=data,
                ),
            )

    async def _title(self) -> str:
        conn = self.uow.conn
        if self.scope.document_id is not None:
            doc = await documents_repo.get_document(conn, self.scope.document_id)
            return "" if doc is None else str(doc["title"])
        card = (
            None
            if self.scope.card_id is None
            else await cards_repo.get_card_row(conn, self.scope.card_id)
        )
        return "" if card is None else str(card["title"])


def _uuid(value: str | None) -> uuid.UUID | None:
    return None if value is None else uuid.UUID(value)


@contextlib.asynccontextmanager
async def comment_change(
    ctx: Deps, scope: Scope, workspace_id: str, actor_id: str | None
) -> AsyncIterator[CommentChange]:
    if scope.on_document:
        async with unit_of_work(ctx) as uow:
            yield CommentChange(uow, scope, workspace_id, actor_id)
        return
    assert scope.board_id is not None
    async with board_change(ctx, [scope.board_id], actor_id) as board:
        yield CommentChange(board.uow, scope, workspace_id, actor_id, board)


# --- threads ---------------------------------------------------------------------------------


def _check_anchor(scope: Scope, anchor: Anchor | None) -> Anchor | None:
    if anchor is None:
        return None
    if not scope.on_document:
        raise ValidationFailed(
            "card threads have no anchor", fields={"anchor": ["only for document threads"]}
        )
    if (anchor.start is None) != (anchor.end is None):
        raise ValidationFailed(
            "a text range needs both ends",
            fields={"anchor": ["give both start and end, or neither"]},
        )
    quote = anchor.quoted_text
    return replace(anchor, quoted_text=None if quote is None else quote[:MAX_QUOTED_CHARS])


async def _anchor_now(ctx: Deps, doc_id: str, anchor: Anchor) -> tuple[str, str | None, int]:
    """(state, quote, stream seq) of a new anchor in the document as it is now: a block that is
    not there is `orphaned` from the start (an update still on its way corrects it when the
    projection reaches it)."""
    state = await load_state(ctx.db, ctx.doc_log, doc_id)
    fragment = await documents_repo.get_fragment(ctx.db, doc_id) or ctx.settings.content_fragment
    thread = {
        "block_id": anchor.block_id,
        "anchor_start": anchor.start,
        "anchor_end": anchor.end,
        "quoted_text": anchor.quoted_text,
    }
    try:
        anchor_state, quoted = anchor_of(content_of(state.update, fragment), thread)
    except ContentError:
        return "anchored", anchor.quoted_text, 0
    return anchor_state, quoted, state.seq


async def create_thread(
    ctx: CommentDeps,
    actor_id: str,
    target: Target,
    body: dict[str, Any],
    anchor: Anchor | None = None,
) -> Written[Thread]:
    """A new thread with its first comment (`body`), anchored to a block when `anchor` is given."""
    scope = await _scope_of(ctx, target)
    access = await _require(ctx, actor_id, scope, "comment")
    anchor = _check_anchor(scope, anchor)
    await _spend(ctx, actor_id)
    mentions = await _mentions(ctx, access.workspace_id, scope, body)
    anchor_state, quoted, seq = (None, None, 0)
    if anchor is not None and scope.document_id is not None:
        anchor_state, quoted, seq = await _anchor_now(ctx, scope.document_id, anchor)
    new = NewThread(
        workspace_id=access.workspace_id,
        created_by=actor_id,
        document_id=scope.document_id,
        board_id=scope.board_id,
        card_id=scope.card_id,
        block_id=anchor.block_id if anchor else None,
        anchor_start=anchor.start if anchor else None,
        anchor_end=anchor.end if anchor else None,
        anchor_state=anchor_state,
        quoted_text=quoted,
        anchor_seq=seq,
    )
    async with comment_change(ctx, scope, access.workspace_id, actor_id) as change:
        conn = change.uow.conn
        thread_id = await repo.insert_thread(conn, new)
        await repo.insert_comment(
            conn, await _new_comment(ctx, thread_id, None, actor_id, body, mentions)
        )
        entity = await load_thread(conn, thread_id)
        await change.emit("thread.created", thread_id, entity)
        top = entity.comments[0]
        await change.notify(mentions.readers, notifications.COMMENT_MENTION, thread_id, top)
    return Written(entity, mentions.unreadable)


async def get_thread(ctx: Deps, actor_id: str, thread_id: str) -> Thread:
    await _thread_for(ctx, actor_id, thread_id, "view")
    return await load_thread(ctx.db, thread_id)


@dataclass(frozen=True)
class ListQuery:
    status: str | None = None
    block_id: str | None = None
    author_id: str | None = None


async def list_threads(
    ctx: Deps, actor_id: str, target: Target, query: ListQuery, limit: int, offset: int
) -> list[Thread]:
    """Threads of a document or card, oldest first, each with its comments (three queries)."""
    scope = await _scope_of(ctx, target)
    await _require(ctx, actor_id, scope, "view")
    where = ThreadFilter(
        document_id=scope.document_id,
        card_id=scope.card_id,
        status=query.status,
        block_id=query.block_id,
        author_id=query.author_id,
    )
    rows = await repo.list_threads(ctx.db, where, limit, offset)
    comments = await repo.comments_of(ctx.db, [str(r["id"]) for r in rows])
    return [Thread.of(r, comments.get(str(r["id"]), [])) for r in rows]


async def set_status(
    ctx: CommentDeps, actor_id: str, thread_id: str, status: Literal["open", "resolved"]
) -> Thread:
    """Resolve or reopen (anyone who may comment); the same status again changes nothing."""
    thread, scope = await _thread_for(ctx, actor_id, thread_id, "comment")
    await _spend(ctx, actor_id)
    async with comment_change(ctx, scope, str(thread.workspace_id), actor_id) as change:
        conn = change.uow.conn
        row = await repo.get_thread(conn, thread_id, lock=True)
        if row is None:
            raise NotFound("thread not found")
        changed = row["status"] != status
        if changed:
            await repo.set_status(conn, thread_id, status, actor_id)
        entity = await load_thread(conn, thread_id)
        if changed:
            kind = "thread.resolved" if status == "resolved" else "thread.reopened"
            await change.emit(kind, thread_id, entity)
        if changed and status == "resolved":
            people = await repo.participants(conn, thread_id)
            await change.notify(people, notifications.THREAD_RESOLVED, thread_id)
    return entity


# --- comments --------------------------------------------------------------------------------


async def reply(
    ctx: CommentDeps, actor_id: str, thread_id: str, body: dict[str, Any]
) -> Written[Comment]:
    """A reply at the end of the thread (one level: its parent is the top comment)."""
    thread, scope = await _thread_for(ctx, actor_id, thread_id, "comment")
    await _spend(ctx, actor_id)
    mentions = await _mentions(ctx, str(thread.workspace_id), scope, body)
    async with comment_change(ctx, scope, str(thread.workspace_id), actor_id) as change:
        conn = change.uow.conn
        if await repo.get_thread(conn, thread_id, lock=True) is None:
            raise NotFound("thread not found")
        if await repo.count_comments(conn, thread_id) >= MAX_COMMENTS_PER_THREAD:
            raise Conflict(
                f"a thread holds at most {MAX_COMMENTS_PER_THREAD} comments", code="limit_reached"
            )
        top = await repo.top_comment_id(conn, thread_id)
        people = await repo.participants(conn, thread_id)
        new = await _new_comment(ctx, thread_id, top, actor_id, body, mentions)
        comment_id = await repo.insert_comment(conn, new)
        await repo.touch_thread(conn, thread_id)
        entity = await _load_comment(conn, thread_id, comment_id)
        await change.emit("comment.created", thread_id, entity)
        # A participant who is also mentioned hears it once, as the mention.
        await change.notify(mentions.readers, notifications.COMMENT_MENTION, thread_id, entity)
        repliers = [p for p in people if p not in mentions.readers]
        await change.notify(repliers, notifications.THREAD_REPLY, thread_id, entity)
    return Written(entity, mentions.unreadable)


def _alive(comment: CommentRef) -> None:
    if comment.deleted_at is not None:
        raise Conflict("the comment was deleted", code="comment_deleted")


async def _locked_comment(change: CommentChange, comment_id: str) -> CommentRef:
    row = await repo.get_comment(change.uow.conn, comment_id, lock=True)
    if row is None:
        raise NotFound("comment not found")
    comment = CommentRef.from_row(row)
    _alive(comment)
    return comment


async def edit_comment(
    ctx: CommentDeps, actor_id: str, comment_id: str, body: dict[str, Any]
) -> Written[Comment]:
    """Only the author edits (with the comment right still theirs); marks the comment edited."""
    comment, thread, scope = await _comment_for(ctx, actor_id, comment_id, "comment")
    if str(comment.author_id) != actor_id:
        raise Forbidden("only the author can edit a comment", code="not_author")
    _alive(comment)
    await _spend(ctx, actor_id)
    mentions = await _mentions(ctx, str(thread.workspace_id), scope, body)
    thread_id = str(thread.id)
    async with comment_change(ctx, scope, str(thread.workspace_id), actor_id) as change:
        before = await _locked_comment(change, comment_id)
        names = await _names(ctx, mentions.members)
        conn = change.uow.conn
        await repo.edit_comment(conn, comment_id, body, plain_text(body, names), mentions.members)
        entity = await _load_comment(conn, thread_id, comment_id)
        await change.emit("comment.updated", thread_id, entity)
        # Only people the edit newly mentions are told (an edit is not a new message).
        known = set(before.mentions)
        added = [u for u in mentions.readers if u not in known]
        await change.notify(added, notifications.COMMENT_MENTION, thread_id, entity)
    return Written(entity, mentions.unreadable)


async def delete_comment(ctx: CommentDeps, actor_id: str, comment_id: str) -> Comment:
    """The author (who may still comment) or a moderator; leaves a tombstone in the thread."""
    comment, thread, scope = await _comment_for(ctx, actor_id, comment_id, "view")
    own = str(comment.author_id) == actor_id
    what: What = "comment" if own else "moderate"
    if not await policy.can(ctx, actor_id, scope.action(what), scope.resource):
        raise Forbidden("only the author or a moderator can delete a comment", code="forbidden")
    await _spend(ctx, actor_id)
    thread_id = str(thread.id)
    async with comment_change(ctx, scope, str(thread.workspace_id), actor_id) as change:
        await _locked_comment(change, comment_id)
        await repo.tombstone_comment(change.uow.conn, comment_id, actor_id)
        entity = await _load_comment(change.uow.conn, thread_id, comment_id)
        await change.emit("comment.deleted", thread_id, entity)
    return entity


def _emoji(emoji: str) -> str:
    if emoji not in REACTIONS:
        raise ValidationFailed(
            "unknown reaction", fields={"emoji": [f"must be one of {', '.join(REACTIONS)}"]}
        )
    return emoji


async def react(ctx: CommentDeps, actor_id: str, comment_id: str, emoji: str, on: bool) -> Comment:
    """Add (`on`) or take back the caller's reaction; idempotent either way."""
    _emoji(emoji)
    comment, thread, scope = await _comment_for(ctx, actor_id, comment_id, "comment")
    _alive(comment)
    await _spend(ctx, actor_id)
    thread_id = str(thread.id)
    async with comment_change(ctx, scope, str(thread.workspace_id), actor_id) as change:
        await _locked_comment(change, comment_id)
        conn = change.uow.conn
        if on:
            changed = await repo.add_reaction(conn, comment_id, actor_id, emoji)
        else:
            changed = await repo.remove_reaction(conn, comment_id, actor_id, emoji)
        entity = await _load_comment(conn, thread_id, comment_id)
        if changed:
            await change.emit("comment.reactions_changed", thread_id, entity)
    return entity


# --- the targets going away ------------------------------------------------------------------


async def archive_for_documents(uow: UnitOfWork, doc_ids: list[str]) -> None:
    """In the deleting transaction: the documents' threads are archived with them."""
    await repo.archive_document_threads(uow.conn, doc_ids)


async def archive_for_card(uow: UnitOfWork, card_id: str) -> None:
    """In the deleting transaction: the card's threads are archived before the card row goes."""
    await repo.archive_card_threads(uow.conn, card_id)


async def follow_card(uow: UnitOfWork, card_id: str, board_id: str) -> None:
    """In the moving transaction: a card's threads move to its new board."""
    await repo.move_card_threads(uow.conn, card_id, board_id)
