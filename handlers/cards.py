"""`/api/v1/lists/`, `/api/v1/cards/`, `/api/v1/checklist-items/` (and lists under a board).

Placement bodies name neighbours, not positions: `after_id` (the item that should precede),
`before_id` (the item that should follow), both (they must still be adjacent), or neither (end).
"""

from __future__ import annotations

from core.errors import ValidationFailed
from handlers.base import signed_in
from handlers.boards import BoardApiHandler
from handlers.routing import route
from handlers.schemas.auth import EmptySchema
from handlers.schemas.boards import (
    CardCreateSchema,
    CardMoveSchema,
    CardSchema,
    CardUpdateSchema,
    ChecklistItemCreateSchema,
    ChecklistItemUpdateSchema,
    ListCreateSchema,
    ListMoveSchema,
    ListSchema,
    ListUpdateSchema,
    VersionOnlySchema,
)
from services import cards as service
from services.auth_guard import Principal

_list = ListSchema()
_card = CardSchema()


class BoardListsHandler(BoardApiHandler):
    openapi = {
        "post": {
            "summary": "Add a list to a board, at the end or next to another list (editor+)",
            "body": ListCreateSchema,
            "response": ListSchema,
            "status": 201,
        }
    }

    @signed_in
    async def post(self, principal: Principal, board_id: str) -> None:
        new = service.NewList.of(self.load_body(ListCreateSchema()))
        created = await service.create_list(self.ctx, principal.user_id, board_id, new)
        self.send_entity(created, _list, 201)


class ListHandler(BoardApiHandler):
    openapi = {
        "patch": {
            "summary": "Rename a list (editor+)",
            "body": ListUpdateSchema,
            "response": ListSchema,
        }
    }

    @signed_in
    async def patch(self, principal: Principal, list_id: str) -> None:
        body, version = self.load_changes(ListUpdateSchema())
        renamed = await service.rename_list(
            self.ctx, principal.user_id, list_id, body["name"], version
        )
        self.send_entity(renamed, _list)


class ListMoveHandler(BoardApiHandler):
    openapi = {
        "post": {
            "summary": "Reorder a list among the board's lists (editor+)",
            "body": ListMoveSchema,
            "response": ListSchema,
        }
    }

    @signed_in
    async def post(self, principal: Principal, list_id: str) -> None:
        data = self.load_body(ListMoveSchema())
        moved = await service.move_list(
            self.ctx,
            principal.user_id,
            list_id,
            service.Placement.of(data),
            self.expected_version(data),
        )
        self.send_entity(moved, _list)


class ListArchiveHandler(BoardApiHandler):
    archived = True
    openapi = {
        "post": {
            "summary": "Archive a list (hides it and its cards; editor+)",
            "body": VersionOnlySchema,
            "response": ListSchema,
        }
    }

    @signed_in
    async def post(self, principal: Principal, list_id: str) -> None:
        version = self.expected_version(self.load_body(VersionOnlySchema()))
        entity = await service.set_list_archived(
            self.ctx, principal.user_id, list_id, self.archived, version
        )
        self.send_entity(entity, _list)


class ListUnarchiveHandler(ListArchiveHandler):
    archived = False
    openapi = {
        "post": {
            "summary": "Unarchive a list (editor+)",
            "body": VersionOnlySchema,
            "response": ListSchema,
        }
    }


class ListCardsHandler(BoardApiHandler):
    openapi = {
        "post": {
            "summary": "Add a card to a list, at the end or next to another card (editor+)",
            "body": CardCreateSchema,
            "response": CardSchema,
            "status": 201,
        }
    }

    @signed_in
    async def post(self, principal: Principal, list_id: str) -> None:
        new = service.NewCard.of(self.load_body(CardCreateSchema()))
        card = await service.create_card(self.ctx, principal.user_id, list_id, new)
        self.send_entity(card, _card, 201)


class CardHandler(BoardApiHandler):
    openapi = {
        "get": {"summary": "A card (viewer+)", "response": CardSchema},
        "patch": {
            "summary": "Edit a card: fields, labels and assignees (replaced wholesale; editor+)",
            "body": CardUpdateSchema,
            "response": CardSchema,
        },
        "delete": {
            "summary": "Delete a card (editor+)",
            "body": VersionOnlySchema,
            "status": 204,
        },
    }

    @signed_in
    async def get(self, principal: Principal, card_id: str) -> None:
        self.send_entity(await service.get_card(self.ctx, principal.user_id, card_id), _card)

    @signed_in
    async def patch(self, principal: Principal, card_id: str) -> None:
        body, version = self.load_changes(CardUpdateSchema())
        patch = service.CardPatch.of(body, version)
        card = await service.update_card(self.ctx, principal.user_id, card_id, patch)
        self.send_entity(card, _card)

    @signed_in
    async def delete(self, principal: Principal, card_id: str) -> None:
        version = self.expected_version(self.load_body(VersionOnlySchema()))
        await service.delete_card(self.ctx, principal.user_id, card_id, version)
        self.send(None, 204)


class CardArchiveHandler(BoardApiHandler):
    archived = True
    openapi = {
        "post": {
            "summary": "Archive a card (editor+)",
            "body": VersionOnlySchema,
            "response": CardSchema,
        }
    }

    @signed_in
    async def post(self, principal: Principal, card_id: str) -> None:
        version = self.expected_version(self.load_body(VersionOnlySchema()))
        entity = await service.set_card_archived(
            self.ctx, principal.user_id, card_id, self.archived, version
        )
        self.send_entity(entity, _card)


class CardUnarchiveHandler(CardArchiveHandler):
    archived = False
    openapi = {
        "post": {
            "summary": "Unarchive a card (editor+)",
            "body": VersionOnlySchema,
            "response": CardSchema,
        }
    }


class CardMoveHandler(BoardApiHandler):
    openapi = {
        "post": {
            "summary": "Move a card within its list, to another list, or to a list of another "
            "board in the same workspace (editor+ on both)",
            "body": CardMoveSchema,
            "response": CardSchema,
        }
    }

    @signed_in
    async def post(self, principal: Principal, card_id: str) -> None:
        data = self.load_body(CardMoveSchema())
        move = service.CardMove(
            str(data["list_id"]), service.Placement.of(data), self.expected_version(data)
        )
        card = await service.move_card(self.ctx, principal.user_id, card_id, move)
        self.send_entity(card, _card)


class CardChecklistHandler(BoardApiHandler):
    openapi = {
        "post": {
            "summary": "Append a checklist item; returns the card (editor+)",
            "body": ChecklistItemCreateSchema,
            "response": CardSchema,
            "status": 201,
        }
    }

    @signed_in
    async def post(self, principal: Principal, card_id: str) -> None:
        data = self.load_body(ChecklistItemCreateSchema())
        card = await service.add_checklist_item(
            self.ctx, principal.user_id, card_id, data["text"], data.get("is_done", False)
        )
        self.send_entity(card, _card, 201)


class ChecklistItemHandler(BoardApiHandler):
    openapi = {
        "patch": {
            "summary": "Edit or tick a checklist item; returns the card (editor+)",
            "body": ChecklistItemUpdateSchema,
            "response": CardSchema,
        },
        "delete": {
            "summary": "Delete a checklist item; returns the card (editor+)",
            "response": CardSchema,
        },
    }

    @signed_in
    async def patch(self, principal: Principal, item_id: str) -> None:
        body = self.load_body(ChecklistItemUpdateSchema())
        if not body:
            raise ValidationFailed("nothing to update")
        patch = service.ChecklistItemPatch.of(body)
        card = await service.update_checklist_item(self.ctx, principal.user_id, item_id, patch)
        self.send_entity(card, _card)

    @signed_in
    async def delete(self, principal: Principal, item_id: str) -> None:
        self.load_body(EmptySchema())
        card = await service.delete_checklist_item(self.ctx, principal.user_id, item_id)
        self.send_entity(card, _card)


ROUTES = [
    route("/api/v1/boards/{board_id}/lists/", BoardListsHandler),
    route("/api/v1/lists/{list_id}/", ListHandler),
    route("/api/v1/lists/{list_id}/move/", ListMoveHandler),
    route("/api/v1/lists/{list_id}/archive/", ListArchiveHandler),
    route("/api/v1/lists/{list_id}/unarchive/", ListUnarchiveHandler),
    route("/api/v1/lists/{list_id}/cards/", ListCardsHandler),
    route("/api/v1/cards/{card_id}/", CardHandler),
    route("/api/v1/cards/{card_id}/archive/", CardArchiveHandler),
    route("/api/v1/cards/{card_id}/unarchive/", CardUnarchiveHandler),
    route("/api/v1/cards/{card_id}/move/", CardMoveHandler),
    route("/api/v1/cards/{card_id}/checklist/", CardChecklistHandler),
    route("/api/v1/checklist-items/{item_id}/", ChecklistItemHandler),
]
