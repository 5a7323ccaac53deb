"""`/api/v1/boards/`: boards, their members (grants) and labels.

Writes that can conflict take the version the client last saw, as `If-Match: "<version>"` or a
`version` field; responses carry the entity's version as `ETag`. A mismatch is 409
`version_conflict` with the current entity under `current`.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from marshmallow import Schema

from core.errors import ValidationFailed
from handlers.base import BaseHandler, signed_in
from handlers.routing import route
from handlers.schemas.auth import EmptySchema
from handlers.schemas.boards import (
    BoardCreateSchema,
    BoardDetailSchema,
    BoardQuerySchema,
    BoardSchema,
    BoardUpdateSchema,
    LabelCreateSchema,
    LabelSchema,
    LabelUpdateSchema,
    MemberListSchema,
    MemberPutSchema,
    MemberSchema,
    VersionOnlySchema,
)
from services import boards as service
from services.auth_guard import Principal

_IF_MATCH = re.compile(r'^(?:W/)?"?(\d{1,9})"?$')
_board = BoardSchema()
_detail = BoardDetailSchema()
_label = LabelSchema()
_member = MemberSchema()
_members = MemberListSchema()


class BoardApiHandler(BaseHandler):
    """Shared by the board, list and card handlers: versions in, ETags out."""

    versioned_writes = True

    def expected_version(self, data: Mapping[str, Any]) -> int | None:
        """The client's version from `If-Match` and/or the body (they must agree); `*` = any.
        Reads `data`, never changes it."""
        header = self.request.headers.get("If-Match")
        from_header = None
        if header is not None and header.strip() != "*":
            match = _IF_MATCH.match(header.strip())
            if match is None:
                raise ValidationFailed(
                    'If-Match must be "<version>"', fields={"If-Match": ["not a version"]}
                )
            from_header = int(match.group(1))
        from_body = data.get("version")
        if from_header is not None and from_body is not None and from_header != from_body:
            raise ValidationFailed(
                "If-Match and version disagree", fields={"version": ["differs from If-Match"]}
            )
        return from_header if from_header is not None else from_body

    def load_changes(self, schema: Schema) -> tuple[dict[str, Any], int | None]:
        """A PATCH body (validated; the caller reads its command from it): at least one changed
        field besides the expected version, which is returned with it."""
        data = self.load_body(schema)
        version = self.expected_version(data)
        if not data.keys() - {"version"}:
            raise ValidationFailed("nothing to update")
        return data, version

    def send_entity(self, entity: object, schema: Schema, status: int = 200) -> None:
        """`entity` as `schema` serialises it, its version as the ETag."""
        body = schema.dump(entity)
        if "version" in body:
            self.set_header("ETag", f'"{body["version"]}"')
        self.send(body, status)


class BoardsHandler(BoardApiHandler):
    openapi = {
        "post": {
            "summary": "Create a board in a workspace (Member+; the creator becomes its manager)",
            "body": BoardCreateSchema,
            "response": BoardSchema,
            "status": 201,
        }
    }

    @signed_in
    async def post(self, principal: Principal) -> None:
        new = service.NewBoard.of(self.load_body(BoardCreateSchema()))
        self.send_entity(await service.create_board(self.ctx, principal.user_id, new), _board, 201)


class BoardHandler(BoardApiHandler):
    openapi = {
        "get": {
            "summary": "A board with its lists, cards and labels (viewer+)",
            "query": BoardQuerySchema,
            "response": BoardDetailSchema,
        },
        "patch": {
            "summary": "Rename, describe, recolour (editor+) or change the private flag (manager)",
            "body": BoardUpdateSchema,
            "response": BoardSchema,
        },
        "delete": {
            "summary": "Delete a board (manager; soft delete)",
            "body": VersionOnlySchema,
            "status": 204,
        },
    }

    @signed_in
    async def get(self, principal: Principal, board_id: str) -> None:
        query = self.load_query(BoardQuerySchema())
        board = await service.get_board_detail(
            self.ctx, principal.user_id, board_id, include_archived=query["include_archived"]
        )
        self.send_entity(board, _detail)

    @signed_in
    async def patch(self, principal: Principal, board_id: str) -> None:
        body, version = self.load_changes(BoardUpdateSchema())
        patch = service.BoardPatch.of(body)
        board = await service.update_board(self.ctx, principal.user_id, board_id, patch, version)
        self.send_entity(board, _board)

    @signed_in
    async def delete(self, principal: Principal, board_id: str) -> None:
        version = self.expected_version(self.load_body(VersionOnlySchema()))
        await service.delete_board(self.ctx, principal.user_id, board_id, version)
        self.send(None, 204)


class BoardArchiveHandler(BoardApiHandler):
    archived = True
    openapi = {
        "post": {
            "summary": "Archive a board: read-only until unarchived (manager)",
            "body": VersionOnlySchema,
            "response": BoardSchema,
        }
    }

    @signed_in
    async def post(self, principal: Principal, board_id: str) -> None:
        version = self.expected_version(self.load_body(VersionOnlySchema()))
        board = await service.set_board_archived(
            self.ctx, principal.user_id, board_id, self.archived, version
        )
        self.send_entity(board, _board)


class BoardUnarchiveHandler(BoardArchiveHandler):
    archived = False
    openapi = {
        "post": {
            "summary": "Unarchive a board (manager)",
            "body": VersionOnlySchema,
            "response": BoardSchema,
        }
    }


class BoardMembersHandler(BoardApiHandler):
    openapi = {
        "get": {
            "summary": "Explicit grants on a board (viewer+)",
            "response": MemberListSchema,
        }
    }

    @signed_in
    async def get(self, principal: Principal, board_id: str) -> None:
        members = await service.list_members(self.ctx, principal.user_id, board_id)
        self.send(_members.dump({"members": members}))


class BoardMemberHandler(BoardApiHandler):
    openapi = {
        "put": {
            "summary": "Grant a workspace member a role on the board (manager)",
            "body": MemberPutSchema,
            "response": MemberSchema,
        },
        "delete": {"summary": "Remove a member's grant (manager)", "status": 204},
    }

    @signed_in
    async def put(self, principal: Principal, board_id: str, user_id: str) -> None:
        data = self.load_body(MemberPutSchema())
        member = await service.grant_member(
            self.ctx, principal.user_id, board_id, user_id, data["role"]
        )
        self.send(_member.dump(member))

    @signed_in
    async def delete(self, principal: Principal, board_id: str, user_id: str) -> None:
        self.load_body(EmptySchema())
        await service.revoke_member(self.ctx, principal.user_id, board_id, user_id)
        self.send(None, 204)


class BoardLabelsHandler(BoardApiHandler):
    openapi = {
        "post": {
            "summary": "Define a label on the board (editor+)",
            "body": LabelCreateSchema,
            "response": LabelSchema,
            "status": 201,
        }
    }

    @signed_in
    async def post(self, principal: Principal, board_id: str) -> None:
        data = self.load_body(LabelCreateSchema())
        label = await service.create_label(
            self.ctx, principal.user_id, board_id, data["name"], data["color"]
        )
        self.send(_label.dump(label), 201)


class LabelHandler(BoardApiHandler):
    openapi = {
        "patch": {
            "summary": "Rename or recolour a label (editor+)",
            "body": LabelUpdateSchema,
            "response": LabelSchema,
        },
        "delete": {
            "summary": "Delete a label; cards lose it (editor+)",
            "status": 204,
        },
    }

    @signed_in
    async def patch(self, principal: Principal, label_id: str) -> None:
        body = self.load_body(LabelUpdateSchema())
        if not body:
            raise ValidationFailed("nothing to update")
        label = await service.update_label(
            self.ctx, principal.user_id, label_id, service.LabelPatch.of(body)
        )
        self.send(_label.dump(label))

    @signed_in
    async def delete(self, principal: Principal, label_id: str) -> None:
        self.load_body(EmptySchema())
        await service.delete_label(self.ctx, principal.user_id, label_id)
        self.send(None, 204)


ROUTES = [
    route("/api/v1/boards/", BoardsHandler),
    route("/api/v1/boards/{board_id}/", BoardHandler),
    route("/api/v1/boards/{board_id}/archive/", BoardArchiveHandler),
    route("/api/v1/boards/{board_id}/unarchive/", BoardUnarchiveHandler),
    route("/api/v1/boards/{board_id}/members/", BoardMembersHandler),
    route("/api/v1/boards/{board_id}/members/{user_id}/", BoardMemberHandler),
    route("/api/v1/boards/{board_id}/labels/", BoardLabelsHandler),
    route("/api/v1/labels/{label_id}/", LabelHandler),
]
