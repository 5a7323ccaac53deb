"""`/api/v1/documents/{doc_id}/blocks/…`: read and edit single blocks of the live document, and
`/api/v1/schemas/blocks.json`, the JSON Schema REST writes are checked against."""

from __future__ import annotations

from typing import Any

from handlers.base import BaseHandler, parse_uuid
from handlers.input_guard import attempt_key
from handlers.routing import route
from handlers.schemas.auth import EmptySchema
from handlers.schemas.blocks import (
    BlockCreateSchema,
    BlockMoveSchema,
    BlockResultSchema,
    BlockUpdateSchema,
)
from services import blocks
from services.block_ops import Place
from services.block_schema import block_schema

_result = BlockResultSchema()


def _place(data: dict[str, Any]) -> Place:
    return Place(data.get("parent_id"), data.get("after"), data.get("before"))


def _body(result: blocks.WriteResult) -> dict[str, Any]:
    located = result.located
    body: dict[str, Any] = {
        "block": located.block if located else None,
        "version": result.version,
        "applied": result.applied,
    }
    if located is not None:
        body.update(parent_id=located.parent_id, position=located.position)
    return body


class BlocksHandler(BaseHandler):
    openapi = {
        "post": {
            "summary": "Create a block (under parent_id, after/before a sibling, or last) in the "
            "live document; Idempotency-Key makes retries safe",
            "body": BlockCreateSchema,
            "response": BlockResultSchema,
            "status": 201,
        }
    }

    async def post(self, doc_id: str) -> None:
        principal = await self.require_user()
        doc_id = parse_uuid(doc_id, "doc_id")
        data = self.load_body(BlockCreateSchema())
        result = await blocks.create_block(
            self.ctx, principal.user_id, doc_id, data["block"], _place(data), attempt_key(self)
        )
        self.send(_result.dump(_body(result)), 201 if result.applied else 200)


class BlockHandler(BaseHandler):
    openapi = {
        "get": {"summary": "One block with its children", "response": BlockResultSchema},
        "patch": {
            "summary": "Change a block's type, props (merged) and/or content",
            "body": BlockUpdateSchema,
            "response": BlockResultSchema,
        },
        "delete": {"summary": "Delete a block and its children", "status": 204},
    }

    async def get(self, doc_id: str, block_id: str) -> None:
        principal = await self.require_user()
        doc_id = parse_uuid(doc_id, "doc_id")
        found, seq = await blocks.get_block(self.ctx, principal.user_id, doc_id, block_id)
        body = {"block": found.block, "parent_id": found.parent_id, "position": found.position}
        self.send(_result.dump({**body, "version": seq}))

    async def patch(self, doc_id: str, block_id: str) -> None:
        principal = await self.require_user()
        doc_id = parse_uuid(doc_id, "doc_id")
        data = self.load_body(BlockUpdateSchema())
        result = await blocks.update_block(
            self.ctx, principal.user_id, doc_id, block_id, data, attempt_key(self)
        )
        self.send(_result.dump(_body(result)))

    async def delete(self, doc_id: str, block_id: str) -> None:
        principal = await self.require_user()
        doc_id = parse_uuid(doc_id, "doc_id")
        self.load_body(EmptySchema())
        await blocks.delete_block(self.ctx, principal.user_id, doc_id, block_id, attempt_key(self))
        self.send(None, 204)


class BlockMoveHandler(BaseHandler):
    openapi = {
        "post": {
            "summary": "Move a block (with its children) under another parent and/or sibling",
            "body": BlockMoveSchema,
            "response": BlockResultSchema,
        }
    }

    async def post(self, doc_id: str, block_id: str) -> None:
        principal = await self.require_user()
        doc_id = parse_uuid(doc_id, "doc_id")
        data = self.load_body(BlockMoveSchema())
        result = await blocks.move_block(
            self.ctx, principal.user_id, doc_id, block_id, _place(data), attempt_key(self)
        )
        self.send(_result.dump(_body(result)))


class BlockSchemaHandler(BaseHandler):
    """Public, like the OpenAPI document: it describes the API, not anybody's data."""

    openapi = {"get": {"summary": "JSON Schema of the block types (BlockNote's, generated)"}}

    async def get(self) -> None:
        self.send(block_schema())


ROUTES = [
    route("/api/v1/documents/{doc_id}/blocks/", BlocksHandler),
    route("/api/v1/documents/{doc_id}/blocks/{block_id}/", BlockHandler),
    route("/api/v1/documents/{doc_id}/blocks/{block_id}/move/", BlockMoveHandler),
    route("/api/v1/schemas/blocks.json", BlockSchemaHandler),
]
