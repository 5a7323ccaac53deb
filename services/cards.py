"""List, card and checklist actions, including moves (within a list, across lists and boards).

Ordering: a create or move computes one new position key between the requested neighbours
(models/repo/positions.py) while the board is locked, so concurrent moves into the same gap get
distinct keys in commit order and only the moved row is written. When keys have grown too long the
collection is rebalanced in the same transaction and a `positions.rebalanced` event precedes the
move's own event.

Optimistic concurrency: updates and moves take the version the client last saw (`If-Match` or
`version`); a mismatch is 409 `version_conflict` with the current entity.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any
from uuid import UUID

from bus.schemas.board_entities import CardSchema, ListSchema
from core.errors import Conflict, NotFound, ValidationFailed
from core.patch import UNSET, ColumnPatch, Unset, given, named_in
from models.repo import boards as boards_repo
from models.repo import cards as cards_repo
from models.repo import positions
from services import comments, notifications, policy
from services.board_changes import BoardChange, StaleVersion, board_change, check_version
from services.board_entities import BoardList, Card, CardRef, ChecklistItem
from services.boards import authorize_item, require_board
from services.notifications import NotificationDraft
from services.policy import Action, Resource

if TYPE_CHECKING:
    from services.deps import Deps

# Bounds that keep one rebalance event well under NATS' 1 MiB payload (an entry is ~90 bytes)
# and a board load reasonable; Trello's own limits are of the same order.
MAX_LISTS_PER_BOARD = 500
MAX_CARDS_PER_LIST = 5_000
MAX_CHECKLIST_ITEMS = 100

_list = ListSchema()
_card = CardSchema()
# The columns a request may set (commands name their fields after them).
CARD_COLUMNS = ("title", "description", "due_at", "color", "cover_url")
CHECKLIST_COLUMNS = ("text", "is_done")


def _id(value: Any) -> str | None:
    return None if value is None else str(value)


@dataclass(frozen=True)
class Placement:
    """Where an item goes among its siblings: right after `after_id`, right before `before_id`,
    between them when both are given (they must be neighbours), or at the end when neither is."""

    after_id: str | None = None
    before_id: str | None = None

    @classmethod
    def of(cls, body: Mapping[str, Any]) -> Placement:
        """From a request body's `after_id`/`before_id` (other keys ignored)."""
        return cls(_id(body.get("after_id")), _id(body.get("before_id")))


AT_THE_END = Placement()


def _ids(values: Sequence[object] | None) -> tuple[str, ...] | None:
    """Label or assignee ids of a body, each once, in order (None: the body has none)."""
    return None if values is None else tuple(str(v) for v in dict.fromkeys(values))


@dataclass(frozen=True)
class NewList:
    name: str
    placement: Placement = AT_THE_END

    @classmethod
    def of(cls, body: Mapping[str, Any]) -> NewList:
        return cls(body["name"], Placement.of(body))


@dataclass(frozen=True)
class NewCard:
    """A card to create; `labels`/`assignees` None: none given."""

    title: str
    description: str = ""
    due_at: datetime | None = None
    color: str | None = None
    cover_url: str | None = None
    labels: tuple[str, ...] | None = None
    assignees: tuple[str, ...] | None = None
    placement: Placement = AT_THE_END

    @classmethod
    def of(cls, body: Mapping[str, Any]) -> NewCard:
        return cls(
            **named_in(body, ("title", *CARD_COLUMNS)),
            labels=_ids(body.get("labels")),
            assignees=_ids(body.get("assignees")),
            placement=Placement.of(body),
        )


@dataclass(frozen=True)
class CardPatch:
    """The fields of a card to change (UNSET: unchanged); labels and assignees, when given,
    replace the card's wholesale. `expected_version` None: last writer wins."""

    title: str | Unset = UNSET
    description: str | Unset = UNSET
    due_at: datetime | Unset | None = UNSET
    color: str | Unset | None = UNSET
    cover_url: str | Unset | None = UNSET
    labels: tuple[str, ...] | None = None
    assignees: tuple[str, ...] | None = None
    expected_version: int | None = None

    @classmethod
    def of(cls, body: Mapping[str, Any], expected_version: int | None) -> CardPatch:
        return cls(
            **named_in(body, CARD_COLUMNS),
            labels=_ids(body.get("labels")),
            assignees=_ids(body.get("assignees")),
            expected_version=expected_version,
        )


@dataclass(frozen=True)
class ChecklistItemPatch(ColumnPatch):
    columns = CHECKLIST_COLUMNS
    text: str | Unset = UNSET
    is_done: bool | Unset = UNSET


async def _place(
    change: BoardChange,
    board_id: str,
    collection: positions.Collection,
    parent_id: str,
    placement: Placement,
    *,
    limit: int | None = None,
    exclude_id: str | None = None,
) -> str:
    """A key for an item placed at `placement` under `parent_id`: checks the collection's size
    `limit` (None: the item is already in it) and announces a rebalance before the caller's own
    event."""
    if limit is not None and await positions.count(change.conn, collection, parent_id) >= limit:
        raise Conflict(f"at most {limit} items fit here", code="limit_reached")
    placed = await positions.place(
        change.conn,
        collection,
        parent_id,
        after_id=placement.after_id,
        before_id=placement.before_id,
        exclude_id=exclude_id,
    )
    if placed.rebalanced:
        await change.emit(
            board_id,
            "positions.rebalanced",
            {"scope": collection.scope, "parent_id": parent_id, "positions": placed.rebalanced},
        )
    return placed.position


# --- lists -----------------------------------------------------------------------------------


def _list_of(row: Mapping[str, Any] | None) -> BoardList | None:
    return None if row is None else BoardList.from_row(row)


async def _list_for(ctx: Deps, actor_id: str, list_id: str, action: Action) -> BoardList:
    found = _list_of(await cards_repo.get_list(ctx.db, list_id))
    return await authorize_item(ctx, actor_id, found, "list", action)


async def create_list(ctx: Deps, actor_id: str, board_id: str, new: NewList) -> BoardList:
    await require_board(ctx, actor_id, Action.BOARD_EDIT, board_id)
    async with board_change(ctx, [board_id], actor_id) as change:
        position = await _place(
            change,
            board_id,
            positions.LISTS,
            board_id,
            new.placement,
            limit=MAX_LISTS_PER_BOARD,
        )
        row = await cards_repo.insert_list(change.conn, board_id, new.name, position, actor_id)
        created = BoardList.from_row(row)
        await change.emit(board_id, "list.created", _list.dump(created))
    return created


# The column changes a list action makes, given the locked list (None: nothing to change).
ListChanges = Callable[[BoardChange, BoardList], Awaitable[dict[str, object] | None]]


async def _change_list(
    ctx: Deps,
    actor_id: str,
    list_id: str,
    expected_version: int | None,
    event_type: str,
    compute: ListChanges,
) -> BoardList:
    """Lock the board and the list, check the version, apply `compute(change, list)` → changes."""
    board_id = str((await _list_for(ctx, actor_id, list_id, Action.BOARD_EDIT)).board_id)
    async with board_change(ctx, [board_id], actor_id) as change:
        current = _list_of(await cards_repo.lock_list(change.conn, list_id))
        if current is None:
            raise NotFound("list not found")
        check_version("list", expected_version, current, _list)
        changes = await compute(change, current)
        if changes is None:
            return current
        updated = BoardList.from_row(await cards_repo.update_list(change.conn, list_id, changes))
        await change.emit(board_id, event_type, _list.dump(updated))
    return updated


async def rename_list(
    ctx: Deps, actor_id: str, list_id: str, name: str, expected_version: int | None
) -> BoardList:
    async def compute(change: BoardChange, current: BoardList) -> dict[str, object]:
        return {"name": name}

    return await _change_list(ctx, actor_id, list_id, expected_version, "list.updated", compute)


async def move_list(
    ctx: Deps,
    actor_id: str,
    list_id: str,
    placement: Placement,
    expected_version: int | None,
) -> BoardList:
    """Reorder a list among the board's lists (one row written)."""

    async def compute(change: BoardChange, current: BoardList) -> dict[str, object]:
        board_id = str(current.board_id)
        position = await _place(
            change, board_id, positions.LISTS, board_id, placement, exclude_id=list_id
        )
        return {"position": position}

    return await _change_list(ctx, actor_id, list_id, expected_version, "list.moved", compute)


async def set_list_archived(
    ctx: Deps, actor_id: str, list_id: str, archived: bool, expected_version: int | None
) -> BoardList:
    """Archiving a list hides it and its cards; the state it is already in changes nothing."""

    async def compute(change: BoardChange, current: BoardList) -> dict[str, object] | None:
        if current.archived == archived:
            return None
        return {"archived_at": datetime.now(UTC) if archived else None}

    event = "list.archived" if archived else "list.unarchived"
    return await _change_list(ctx, actor_id, list_id, expected_version, event, compute)


# --- cards: validation shared by create, update and move ---------------------------------------


async def _check_assignees(ctx: Deps, board_id: str, user_ids: Sequence[str] | None) -> None:
    """Assignees must be able to view the board (a card they cannot see is no task of theirs)."""
    blind = [
        u
        for u in user_ids or ()
        if not await policy.can(ctx, u, Action.BOARD_VIEW, Resource.board(board_id))
    ]
    if blind:
        raise ValidationFailed(
            "assignees must be able to view the board",
            fields={"assignees": [f"{u} cannot view this board" for u in blind]},
        )


async def _check_labels(change: BoardChange, board_id: str, label_ids: Sequence[str]) -> None:
    known = await boards_repo.labels_of_board(change.conn, board_id, list(label_ids))
    unknown = set(label_ids) - known
    if unknown:
        raise ValidationFailed(
            "labels must be defined on the card's board",
            fields={"labels": [f"{label} is not a label of this board" for label in unknown]},
        )


async def _apply_links(
    change: BoardChange,
    card_id: str,
    board_id: str,
    labels: Sequence[str] | None,
    assignees: Sequence[str] | None,
) -> list[str]:
    """Replace the labels and the assignees that are given (not None); returns the users newly
    assigned."""
    if labels is not None:
        await _check_labels(change, board_id, labels)
        await cards_repo.replace_links(
            change.conn, card_id, "card_labels", "label_id", list(labels)
        )
    if assignees is None:
        return []
    return await cards_repo.replace_links(
        change.conn, card_id, "card_assignees", "user_id", list(assignees)
    )


async def _notify_assigned(
    change: BoardChange, board_id: str, card: Card, assigned: list[str]
) -> None:
    """`card.assigned` for each user newly on the card (not the actor: `notify` skips them)."""
    board = change.board(board_id)
    for user_id in assigned:
        await notifications.notify(
            change.uow,
            NotificationDraft(
                recipient_id=UUID(user_id),
                kind=notifications.CARD_ASSIGNED,
                actor_id=None if change.actor_id is None else UUID(str(change.actor_id)),
                workspace_id=board.workspace_id,
                board_id=UUID(board_id),
                card_id=card.id,
                data={"title": card.title, "board_name": board.name},
            ),
        )


def _card_of(row: Mapping[str, Any] | None) -> Card | None:
    return None if row is None else Card.from_row(row)


async def _card_entity(change: BoardChange, card_id: str) -> Card:
    card = _card_of(await cards_repo.get_card(change.conn, card_id))
    assert card is not None
    return card


async def _emit_card(change: BoardChange, board_id: str, event_type: str, card: Card) -> None:
    await change.emit(board_id, event_type, _card.dump(card))


async def _card_for(ctx: Deps, actor_id: str, card_id: str, action: Action) -> CardRef:
    row = await cards_repo.get_card_row(ctx.db, card_id)
    ref = None if row is None else CardRef.from_row(row)
    return await authorize_item(ctx, actor_id, ref, "card", action)


async def _lock_card(
    change: BoardChange, card_id: str, board_id: str, expected_version: int | None
) -> CardRef:
    """The card, locked, still on the board that was authorised, at the expected version."""
    row = await cards_repo.get_card_row(change.conn, card_id, lock=True)
    if row is None:
        raise NotFound("card not found")
    ref = CardRef.from_row(row)
    if str(ref.board_id) != board_id:
        raise Conflict("the card moved to another board meanwhile; retry", code="card_moved")
    if expected_version is not None and expected_version != ref.version:
        raise StaleVersion("card", _card.dump(await _card_entity(change, card_id)))
    return ref


# --- cards -----------------------------------------------------------------------------------


async def get_card(ctx: Deps, actor_id: str, card_id: str) -> Card:
    card = _card_of(await cards_repo.get_card(ctx.db, card_id))
    return await authorize_item(ctx, actor_id, card, "card", Action.BOARD_VIEW)


async def create_card(ctx: Deps, actor_id: str, list_id: str, new: NewCard) -> Card:
    board_id = str((await _list_for(ctx, actor_id, list_id, Action.BOARD_EDIT)).board_id)
    await _check_assignees(ctx, board_id, new.assignees)
    async with board_change(ctx, [board_id], actor_id) as change:
        target = _list_of(await cards_repo.lock_list(change.conn, list_id))
        if target is None:
            raise NotFound("list not found")
        if target.archived:
            raise Conflict("the list is archived", code="list_archived")
        position = await _place(
            change, board_id, positions.CARDS, list_id, new.placement, limit=MAX_CARDS_PER_LIST
        )
        fields = {**given(new, CARD_COLUMNS), "created_by": actor_id}
        card_id = await cards_repo.insert_card(
            change.conn, target.board_id, target.id, fields, position
        )
        assigned = await _apply_links(change, card_id, board_id, new.labels, new.assignees)
        card = await _card_entity(change, card_id)
        await _emit_card(change, board_id, "card.created", card)
        await _notify_assigned(change, board_id, card, assigned)
    return card


async def update_card(ctx: Deps, actor_id: str, card_id: str, patch: CardPatch) -> Card:
    """Change fields, labels (replaced wholesale) and assignees (replaced wholesale)."""
    board_id = str((await _card_for(ctx, actor_id, card_id, Action.BOARD_EDIT)).board_id)
    await _check_assignees(ctx, board_id, patch.assignees)
    async with board_change(ctx, [board_id], actor_id) as change:
        await _lock_card(change, card_id, board_id, patch.expected_version)
        await cards_repo.update_card(change.conn, card_id, given(patch, CARD_COLUMNS))
        assigned = await _apply_links(change, card_id, board_id, patch.labels, patch.assignees)
        card = await _card_entity(change, card_id)
        await _emit_card(change, board_id, "card.updated", card)
        await _notify_assigned(change, board_id, card, assigned)
    return card


async def set_card_archived(
    ctx: Deps, actor_id: str, card_id: str, archived: bool, expected_version: int | None
) -> Card:
    board_id = str((await _card_for(ctx, actor_id, card_id, Action.BOARD_EDIT)).board_id)
    async with board_change(ctx, [board_id], actor_id) as change:
        current = await _lock_card(change, card_id, board_id, expected_version)
        if current.archived != archived:
            stamp = datetime.now(UTC) if archived else None
            await cards_repo.update_card(change.conn, card_id, {"archived_at": stamp})
            card = await _card_entity(change, card_id)
            event = "card.archived" if archived else "card.unarchived"
            await _emit_card(change, board_id, event, card)
            return card
        return await _card_entity(change, card_id)


async def delete_card(ctx: Deps, actor_id: str, card_id: str, expected_version: int | None) -> None:
    board_id = str((await _card_for(ctx, actor_id, card_id, Action.BOARD_EDIT)).board_id)
    async with board_change(ctx, [board_id], actor_id) as change:
        await _lock_card(change, card_id, board_id, expected_version)
        card = await _card_entity(change, card_id)
        await comments.archive_for_card(change.uow, card_id)
        await cards_repo.delete_card(change.conn, card_id)
        await _emit_card(change, board_id, "card.deleted", card)


@dataclass(frozen=True)
class CardMove:
    """Move a card into `list_id` (this board's or another's) at `placement`."""

    list_id: str
    placement: Placement
    expected_version: int | None = None


async def move_card(ctx: Deps, actor_id: str, card_id: str, move: CardMove) -> Card:
    """Move a card to a place in a list of the same board, or of another board of the same
    workspace (editor on both). Across boards the card keeps only the assignees who can view the
    new board, and loses its labels (labels are defined per board)."""
    ref = await _card_for(ctx, actor_id, card_id, Action.BOARD_EDIT)
    source_board = str(ref.board_id)
    target_list_id = move.list_id
    target_list = _list_of(await cards_repo.get_list(ctx.db, target_list_id))
    if target_list is None:
        raise ValidationFailed("no such list", fields={"list_id": ["not found"]})
    target_board = str(target_list.board_id)
    keep_assignees = None
    if target_board != source_board:
        keep_assignees = await _cross_board_checks(ctx, actor_id, ref, target_board)
    async with board_change(ctx, [source_board, target_board], actor_id) as change:
        await _lock_card(change, card_id, source_board, move.expected_version)
        target = _list_of(await cards_repo.lock_list(change.conn, target_list_id))
        if target is None or str(target.board_id) != target_board:
            raise Conflict("the target list changed meanwhile; retry", code="stale_placement")
        if target.archived:
            raise Conflict("the target list is archived", code="list_archived")
        position = await _place(
            change,
            target_board,
            positions.CARDS,
            target_list_id,
            move.placement,
            # Within its own list the card is already counted.
            limit=None if target_list_id == str(ref.list_id) else MAX_CARDS_PER_LIST,
            exclude_id=card_id,
        )
        await cards_repo.update_card(
            change.conn,
            card_id,
            {"list_id": target_list_id, "board_id": target_board, "position": position},
        )
        if keep_assignees is not None:
            await _apply_links(change, card_id, target_board, (), keep_assignees)
            await comments.follow_card(change.uow, card_id, target_board)
        card = await _card_entity(change, card_id)
        await _emit_card(change, target_board, "card.moved", card)
        if target_board != source_board:
            # Viewers of the old board learn that the card left (its entity names the new place).
            await _emit_card(change, source_board, "card.moved", card)
    return card


async def _cross_board_checks(
    ctx: Deps, actor_id: str, card: CardRef, target_board: str
) -> list[str]:
    """Editor on the target too, same workspace; returns the assignees who may stay."""
    target_access = await require_board(ctx, actor_id, Action.BOARD_EDIT, target_board)
    source_access = await require_board(ctx, actor_id, Action.BOARD_EDIT, str(card.board_id))
    if target_access.workspace_id != source_access.workspace_id:
        raise ValidationFailed(
            "cards move only between boards of the same workspace",
            fields={"list_id": ["belongs to another workspace"]},
        )
    current = _card_of(await cards_repo.get_card(ctx.db, str(card.id)))
    assert current is not None
    return [
        str(u)
        for u in current.assignees
        if await policy.can(ctx, str(u), Action.BOARD_VIEW, Resource.board(target_board))
    ]


# --- checklist items ---------------------------------------------------------------------------


async def add_checklist_item(
    ctx: Deps, actor_id: str, card_id: str, text: str, is_done: bool = False
) -> Card:
    """Append an item; the card's version moves (it is part of the card)."""
    board_id = str((await _card_for(ctx, actor_id, card_id, Action.BOARD_EDIT)).board_id)
    async with board_change(ctx, [board_id], actor_id) as change:
        await _lock_card(change, card_id, board_id, None)
        position = await _place(
            change, board_id, positions.CHECKLIST, card_id, AT_THE_END, limit=MAX_CHECKLIST_ITEMS
        )
        await cards_repo.insert_checklist_item(change.conn, card_id, text, is_done, position)
        await cards_repo.update_card(change.conn, card_id, {})
        card = await _card_entity(change, card_id)
        await _emit_card(change, board_id, "card.updated", card)
    return card


async def _checklist_change(
    ctx: Deps, actor_id: str, item_id: str, patch: ChecklistItemPatch | None
) -> Card:
    """Update (`patch`) or delete (None) one item; returns the card."""
    row = await cards_repo.get_checklist_item(ctx.db, item_id)
    if row is None:
        raise NotFound("checklist item not found")
    card_id = str(ChecklistItem.from_row(row).card_id)
    board_id = str((await _card_for(ctx, actor_id, card_id, Action.BOARD_EDIT)).board_id)
    async with board_change(ctx, [board_id], actor_id) as change:
        await _lock_card(change, card_id, board_id, None)
        if await cards_repo.get_checklist_item(change.conn, item_id) is None:
            raise NotFound("checklist item not found")
        if patch is None:
            await cards_repo.delete_checklist_item(change.conn, item_id)
        else:
            await cards_repo.update_checklist_item(change.conn, item_id, patch.changes())
        await cards_repo.update_card(change.conn, card_id, {})
        card = await _card_entity(change, card_id)
        await _emit_card(change, board_id, "card.updated", card)
    return card


async def update_checklist_item(
    ctx: Deps, actor_id: str, item_id: str, patch: ChecklistItemPatch
) -> Card:
    return await _checklist_change(ctx, actor_id, item_id, patch)


async def delete_checklist_item(ctx: Deps, actor_id: str, item_id: str) -> Card:
    return await _checklist_change(ctx, actor_id, item_id, None)
