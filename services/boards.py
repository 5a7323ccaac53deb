"""Board actions: create, read (with everything on it), update, archive, delete, grants, labels.

Every action checks the policy first, then changes the board inside `board_change` (lock, change,
record events, commit, publish). Permission caches are invalidated after the commit.

Who may do what (effective board role from services/policy.py):
* viewer: read the board, its cards and its members;
* editor: everything on lists, cards, labels and checklists; rename/describe/recolour the board;
* manager: archive/unarchive/delete the board, change its private flag, manage its grants.
An archived board is read-only (409 `board_archived`) until it is unarchived.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, TypeVar
from uuid import UUID

import asyncpg

from bus.schemas.board_entities import BoardSchema, LabelSchema, MemberSchema
from core.errors import Conflict, NotFound, ValidationFailed
from core.patch import UNSET, ColumnPatch, Unset, named_in
from models.repo import boards as boards_repo
from models.repo import cards as cards_repo
from services import notifications, permissions_cache, policy
from services.board_changes import BoardChange, board_change, check_version
from services.board_entities import Board, BoardDetail, Label, ListWithCards, Member, OnBoard
from services.policy import Action, Resource
from services.unit_of_work import unit_of_work

if TYPE_CHECKING:
    from services.deps import Deps

_board = BoardSchema()
_label = LabelSchema()
_member = MemberSchema()
# The columns a request may set (commands name their fields after them).
BOARD_COLUMNS = ("name", "description", "color", "background", "is_private")
LABEL_COLUMNS = ("name", "color")
Item = TypeVar("Item", bound=OnBoard)


@dataclass(frozen=True)
class NewBoard:
    """A board to create (from a validated request body)."""

    workspace_id: UUID
    name: str
    description: str = ""
    color: str | None = None
    background: str | None = None
    is_private: bool = False

    @classmethod
    def of(cls, body: Mapping[str, Any]) -> NewBoard:
        """A name of only spaces stays as given (the schema let it through; trimming would
        empty it)."""
        board = cls(**named_in(body, ("workspace_id", *BOARD_COLUMNS)))
        return dataclasses.replace(board, name=board.name.strip() or board.name)


@dataclass(frozen=True)
class BoardPatch(ColumnPatch):
    """The fields of a board to change; UNSET ones stay as they are."""

    columns = BOARD_COLUMNS
    name: str | Unset = UNSET
    description: str | Unset = UNSET
    color: str | Unset | None = UNSET
    background: str | Unset | None = UNSET
    is_private: bool | Unset = UNSET


@dataclass(frozen=True)
class LabelPatch(ColumnPatch):
    columns = LABEL_COLUMNS
    name: str | Unset = UNSET
    color: str | Unset = UNSET


async def require_board(ctx: Deps, actor_id: str, action: Action, board_id: str) -> policy.Access:
    return await policy.require(ctx, actor_id, action, Resource.board(board_id))


async def authorize_item(
    ctx: Deps, actor_id: str, item: Item | None, kind: str, action: Action
) -> Item:
    """A list, card or label, if the caller may `action` on its board (else 404/403)."""
    if item is None:
        raise NotFound(f"{kind} not found")
    await require_board(ctx, actor_id, action, str(item.board_id))
    return item


async def _emit_board(change: BoardChange, event_type: str, row: Mapping[str, Any]) -> Board:
    """`row`: the board after the write; its `event_seq` is that of the event carrying it."""
    board_id = str(row["id"])
    board = dataclasses.replace(Board.from_row(row), event_seq=change.next_seq(board_id))
    await change.emit(board_id, event_type, _board.dump(board))
    return board


# --- boards ----------------------------------------------------------------------------------


async def create_board(ctx: Deps, actor_id: str, new: NewBoard) -> Board:
    """A new board; its creator gets an explicit manager grant (so a private board stays
    visible to them, and they can manage it whatever their workspace role)."""
    workspace_id = str(new.workspace_id)
    await policy.require(
        ctx, actor_id, Action.WORKSPACE_CREATE_CONTENT, Resource.workspace(workspace_id)
    )
    async with unit_of_work(ctx) as uow:
        fields = {**dataclasses.asdict(new), "created_by": actor_id}
        row = await boards_repo.insert_board(uow.conn, fields)
        board_id = str(row["id"])
        await boards_repo.upsert_member(uow.conn, board_id, actor_id, "manager", actor_id)
        change = BoardChange(uow, actor_id, {board_id: Board.from_row(row)})
        board = await _emit_board(change, "board.created", row)
        await change.store_sequences()
    return board


async def get_board_detail(
    ctx: Deps, actor_id: str, board_id: str, *, include_archived: bool
) -> BoardDetail:
    """The board with its lists, cards and labels, read in one snapshot: `event_seq` is exactly
    the last change the contents include (resume the socket from it)."""
    await require_board(ctx, actor_id, Action.BOARD_VIEW, board_id)
    async with (
        ctx.db.connection() as conn,
        conn.transaction(isolation="repeatable_read", readonly=True),
    ):
        row = await boards_repo.get_board(conn, board_id)
        if row is None:
            raise NotFound("board not found")
        lists = await cards_repo.load_board_contents(
            conn, board_id, include_archived=include_archived
        )
        labels = await boards_repo.list_labels(conn, board_id)
    return BoardDetail.of(
        Board.from_row(row),
        [ListWithCards.from_row(item) for item in lists],
        [Label.from_row(label) for label in labels],
    )


async def update_board(
    ctx: Deps,
    actor_id: str,
    board_id: str,
    patch: BoardPatch,
    expected_version: int | None,
) -> Board:
    """Editors rename/describe/recolour; only managers change the private flag."""
    needs = Action.BOARD_EDIT if patch.is_private is UNSET else Action.BOARD_MANAGE
    await require_board(ctx, actor_id, needs, board_id)
    async with board_change(ctx, [board_id], actor_id) as change:
        current = change.board(board_id)
        check_version("board", expected_version, current, _board)
        row = await boards_repo.update_board(change.conn, board_id, patch.changes())
        board = await _emit_board(change, "board.updated", row)
    if patch.is_private is not UNSET and patch.is_private != current.is_private:
        await permissions_cache.invalidate_resource(
            ctx, "board", board_id, str(current.workspace_id)
        )
    return board


async def set_board_archived(
    ctx: Deps, actor_id: str, board_id: str, archived: bool, expected_version: int | None
) -> Board:
    """Archive (read-only) or unarchive; asking for the state it is already in changes nothing."""
    await require_board(ctx, actor_id, Action.BOARD_MANAGE, board_id)
    async with board_change(ctx, [board_id], actor_id, allow_archived=True) as change:
        current = change.board(board_id)
        check_version("board", expected_version, current, _board)
        if current.archived == archived:
            return current
        row = await boards_repo.update_board(
            change.conn, board_id, {"archived_at": datetime.now(UTC) if archived else None}
        )
        return await _emit_board(change, "board.archived" if archived else "board.unarchived", row)


async def delete_board(
    ctx: Deps, actor_id: str, board_id: str, expected_version: int | None
) -> None:
    """Soft delete: hidden at once (the policy treats it as missing); its events stay for audit."""
    await require_board(ctx, actor_id, Action.BOARD_MANAGE, board_id)
    async with board_change(ctx, [board_id], actor_id, allow_archived=True) as change:
        current = change.board(board_id)
        check_version("board", expected_version, current, _board)
        row = await boards_repo.update_board(
            change.conn, board_id, {"deleted_at": datetime.now(UTC)}
        )
        await _emit_board(change, "board.deleted", row)
    await permissions_cache.invalidate_resource(ctx, "board", board_id, str(current.workspace_id))


# --- members (explicit grants) ---------------------------------------------------------------


async def list_members(ctx: Deps, actor_id: str, board_id: str) -> list[Member]:
    await require_board(ctx, actor_id, Action.BOARD_VIEW, board_id)
    return [Member.from_row(m) for m in await boards_repo.list_members(ctx.db, board_id)]


async def grant_member(ctx: Deps, actor_id: str, board_id: str, user_id: str, role: str) -> Member:
    """Give a workspace member (guests included: that is how they see a board) a board role."""
    access = await require_board(ctx, actor_id, Action.BOARD_MANAGE, board_id)
    if await boards_repo.workspace_role(ctx.db, access.workspace_id, user_id) is None:
        raise ValidationFailed(
            "the user is not a member of this board's workspace",
            fields={"user_id": ["not a member of the workspace"]},
        )
    async with board_change(ctx, [board_id], actor_id, allow_archived=True) as change:
        before = await boards_repo.get_member(change.conn, board_id, user_id)
        member = Member.from_row(
            await boards_repo.upsert_member(change.conn, board_id, user_id, role, actor_id)
        )
        await change.emit(board_id, "member.granted", _member.dump(member))
        if before is None or before["role"] != role:
            await notifications.access_granted(
                change.uow,
                actor_id,
                user_id,
                access.workspace_id,
                title=change.board(board_id).name,
                role=role,
                board_id=board_id,
            )
    await permissions_cache.invalidate_user(
        ctx, user_id, access.workspace_id, resource_type="board", resource_id=board_id
    )
    return member


async def revoke_member(ctx: Deps, actor_id: str, board_id: str, user_id: str) -> None:
    access = await require_board(ctx, actor_id, Action.BOARD_MANAGE, board_id)
    async with board_change(ctx, [board_id], actor_id, allow_archived=True) as change:
        row = await boards_repo.get_member(change.conn, board_id, user_id)
        if row is None:
            raise NotFound("no such board member")
        await boards_repo.delete_member(change.conn, board_id, user_id)
        await change.emit(board_id, "member.revoked", _member.dump(Member.from_row(row)))
    await permissions_cache.invalidate_user(
        ctx, user_id, access.workspace_id, resource_type="board", resource_id=board_id
    )


# --- labels ----------------------------------------------------------------------------------


async def create_label(ctx: Deps, actor_id: str, board_id: str, name: str, color: str) -> Label:
    await require_board(ctx, actor_id, Action.BOARD_EDIT, board_id)
    async with board_change(ctx, [board_id], actor_id) as change:
        try:
            async with change.conn.transaction():
                row = await boards_repo.insert_label(change.conn, board_id, name, color)
        except asyncpg.UniqueViolationError as err:
            raise _label_exists() from err
        label = Label.from_row(row)
        await change.emit(board_id, "label.created", _label.dump(label))
    return label


def _label_exists() -> Conflict:
    return Conflict(
        "the board has a label with that name",
        code="label_exists",
        fields={"name": ["already used on this board"]},
    )


async def _label_and_board(ctx: Deps, actor_id: str, label_id: str) -> Label:
    row = await boards_repo.get_label(ctx.db, label_id)
    label = None if row is None else Label.from_row(row)
    return await authorize_item(ctx, actor_id, label, "label", Action.BOARD_EDIT)


async def update_label(ctx: Deps, actor_id: str, label_id: str, patch: LabelPatch) -> Label:
    label = await _label_and_board(ctx, actor_id, label_id)
    board_id = str(label.board_id)
    async with board_change(ctx, [board_id], actor_id) as change:
        try:
            async with change.conn.transaction():
                row = await boards_repo.update_label(change.conn, label_id, patch.changes())
        except asyncpg.UniqueViolationError as err:
            raise _label_exists() from err
        updated = Label.from_row(row)
        await change.emit(board_id, "label.updated", _label.dump(updated))
    return updated


async def delete_label(ctx: Deps, actor_id: str, label_id: str) -> None:
    """Cards lose the label with it (clients drop it from cards on `label.deleted`)."""
    label = await _label_and_board(ctx, actor_id, label_id)
    board_id = str(label.board_id)
    async with board_change(ctx, [board_id], actor_id) as change:
        await boards_repo.delete_label(change.conn, label_id)
        await change.emit(board_id, "label.deleted", _label.dump(label))
