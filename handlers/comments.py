"""`/api/v1/documents/{id}/threads/`, `/api/v1/cards/{id}/threads/`, threads, comments, reactions."""

from __future__ import annotations

from typing import Any, ClassVar, Literal

from handlers.base import BaseHandler, signed_in
from handlers.routing import route
from handlers.schemas.auth import EmptySchema
from handlers.schemas.comments import (
    CommentBodyInSchema,
    CommentSchema,
    CommentWrittenSchema,
    ThreadCreateSchema,
    ThreadListQuerySchema,
    ThreadPageSchema,
    ThreadSchema,
    ThreadWrittenSchema,
)
from services import comments as service
from services.auth_guard import Principal
from services.comment_entities import Comment, Thread
from services.comments import Anchor, ListQuery, Target, Written

_thread = ThreadSchema()
_comment = CommentSchema()


def _written(written: Written[Thread] | Written[Comment]) -> dict[str, Any]:
    entity = written.entity
    dumped = _thread.dump(entity) if isinstance(entity, Thread) else _comment.dump(entity)
    return {**dumped, "unnotified_mentions": written.unnotified_mentions}


def _anchor(data: dict[str, Any] | None) -> Anchor | None:
    return None if data is None else Anchor(**data)


class _TargetThreadsHandler(BaseHandler):
    """The threads of one document or card (the subclass names which)."""

    kind: ClassVar[Literal["document", "card"]]

    async def _list(self, target: Target) -> None:
        query = self.load_query(ThreadListQuerySchema())
        limit, offset = query["limit"], query["offset"]
        author = query.get("author_id")
        where = ListQuery(
            query.get("status"), query.get("block_id"), None if author is None else str(author)
        )
        rows = await service.list_threads(
            self.ctx, self.principal_id, target, where, limit + 1, offset
        )
        page = {
            "items": _thread.dump(rows[:limit], many=True),
            "limit": limit,
            "offset": offset,
            "next_offset": offset + limit if len(rows) > limit else None,
        }
        self.send(page)

    async def _create(self, target: Target) -> None:
        data = self.load_body(ThreadCreateSchema())
        written = await service.create_thread(
            self.ctx, self.principal_id, target, data["body"], _anchor(data["anchor"])
        )
        self.send(_written(written), 201)

    @property
    def principal_id(self) -> str:
        assert self.principal is not None
        return self.principal.user_id


_LIST = {
    "query": ThreadListQuerySchema,
    "response": ThreadPageSchema,
}
_CREATE = {"body": ThreadCreateSchema, "response": ThreadWrittenSchema, "status": 201}


class DocumentThreadsHandler(_TargetThreadsHandler):
    openapi = {
        "get": {
            "summary": "Comment threads of a document, oldest first, with their comments "
            "(document:view; filter by status, block, author)",
            **_LIST,
        },
        "post": {
            "summary": "Start a thread (its first comment), optionally anchored to a block and a "
            "text range (document:comment)",
            **_CREATE,
        },
    }

    @signed_in
    async def get(self, principal: Principal, doc_id: str) -> None:
        await self._list(Target("document", doc_id))

    @signed_in
    async def post(self, principal: Principal, doc_id: str) -> None:
        await self._create(Target("document", doc_id))


class CardThreadsHandler(_TargetThreadsHandler):
    openapi = {
        "get": {
            "summary": "Comment threads of a card, oldest first, with their comments "
            "(board:view; filter by status, author)",
            **_LIST,
        },
        "post": {"summary": "Start a thread on a card (board:comment)", **_CREATE},
    }

    @signed_in
    async def get(self, principal: Principal, card_id: str) -> None:
        await self._list(Target("card", card_id))

    @signed_in
    async def post(self, principal: Principal, card_id: str) -> None:
        await self._create(Target("card", card_id))


class ThreadHandler(BaseHandler):
    openapi = {
        "get": {"summary": "A thread with its comments (view right)", "response": ThreadSchema}
    }

    @signed_in
    async def get(self, principal: Principal, thread_id: str) -> None:
        self.send(_thread.dump(await service.get_thread(self.ctx, principal.user_id, thread_id)))


class ThreadCommentsHandler(BaseHandler):
    openapi = {
        "post": {
            "summary": "Reply in a thread (comment right; one level: replies follow the top "
            "comment)",
            "body": CommentBodyInSchema,
            "response": CommentWrittenSchema,
            "status": 201,
        }
    }

    @signed_in
    async def post(self, principal: Principal, thread_id: str) -> None:
        data = self.load_body(CommentBodyInSchema())
        written = await service.reply(self.ctx, principal.user_id, thread_id, data["body"])
        self.send(_written(written), 201)


class ThreadResolveHandler(BaseHandler):
    target_status: ClassVar[Literal["open", "resolved"]] = "resolved"
    openapi = {
        "post": {
            "summary": "Resolve a thread (comment right; again: no change)",
            "body": EmptySchema,
            "response": ThreadSchema,
        }
    }

    @signed_in
    async def post(self, principal: Principal, thread_id: str) -> None:
        self.load_body(EmptySchema())
        thread = await service.set_status(
            self.ctx, principal.user_id, thread_id, self.target_status
        )
        self.send(_thread.dump(thread))


class ThreadReopenHandler(ThreadResolveHandler):
    target_status = "open"
    openapi = {
        "post": {
            "summary": "Reopen a resolved thread (comment right; again: no change)",
            "body": EmptySchema,
            "response": ThreadSchema,
        }
    }


class CommentHandler(BaseHandler):
    openapi = {
        "patch": {
            "summary": "Edit your own comment (marked edited)",
            "body": CommentBodyInSchema,
            "response": CommentWrittenSchema,
        },
        "delete": {
            "summary": "Delete your comment, or moderate another's (manage right): a tombstone "
            "stays in the thread",
            "response": CommentSchema,
        },
    }

    @signed_in
    async def patch(self, principal: Principal, comment_id: str) -> None:
        data = self.load_body(CommentBodyInSchema())
        written = await service.edit_comment(self.ctx, principal.user_id, comment_id, data["body"])
        self.send(_written(written))

    @signed_in
    async def delete(self, principal: Principal, comment_id: str) -> None:
        self.load_body(EmptySchema())
        self.send(
            _comment.dump(await service.delete_comment(self.ctx, principal.user_id, comment_id))
        )


class ReactionHandler(BaseHandler):
    openapi = {
        "put": {
            "summary": "React to a comment with one of the allowed emoji (comment right; "
            "idempotent)",
            "body": EmptySchema,
            "response": CommentSchema,
        },
        "delete": {
            "summary": "Take back your reaction (idempotent)",
            "response": CommentSchema,
        },
    }

    @signed_in
    async def put(self, principal: Principal, comment_id: str, emoji: str) -> None:
        self.load_body(EmptySchema())
        comment = await service.react(self.ctx, principal.user_id, comment_id, emoji, True)
        self.send(_comment.dump(comment))

    @signed_in
    async def delete(self, principal: Principal, comment_id: str, emoji: str) -> None:
        self.load_body(EmptySchema())
        comment = await service.react(self.ctx, principal.user_id, comment_id, emoji, False)
        self.send(_comment.dump(comment))


ROUTES = [
    route("/api/v1/documents/{doc_id}/threads/", DocumentThreadsHandler),
    route("/api/v1/cards/{card_id}/threads/", CardThreadsHandler),
    route("/api/v1/threads/{thread_id}/", ThreadHandler),
    route("/api/v1/threads/{thread_id}/comments/", ThreadCommentsHandler),
    route("/api/v1/threads/{thread_id}/resolve/", ThreadResolveHandler),
    route("/api/v1/threads/{thread_id}/reopen/", ThreadReopenHandler),
    route("/api/v1/comments/{comment_id}/", CommentHandler),
    route("/api/v1/comments/{comment_id}/reactions/{emoji}/", ReactionHandler),
]
