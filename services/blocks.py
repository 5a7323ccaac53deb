"""REST block edits into the live document: get, create, update, move, delete.

Each write is a CRDT transaction on the document's BlockNote fragment (services/block_ops.py),
published through the document log like an editor's update (services/doc_writes.py: the
per-document server-write lock, `Nats-Msg-Id: block:<op>:<key>`, `Collab-Client: server:block`,
`Collab-User: <caller>`), so every connected editor sees it at once and what they type meanwhile
merges. Writes are checked against BlockNote's JSON Schema (services/block_schema.py) before
anything is read or written. A retry with the same idempotency key gets the first result back.

Types: a block is BlockNote's JSON (plain dicts), open on purpose and checked against the
editor's JSON Schema instead of a Python class that would copy it (see `services/block_tree.py`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import structlog

from core.errors import AppError, Conflict, NotFound, ValidationFailed
from core.yjs import EMPTY_UPDATE, merge
from models.repo import documents as repo
from services import block_ops, doc_writes, policy
from services.block_ops import BlockEditError, Place
from services.block_schema import block_errors, content_kind, prop_names
from services.block_tree import Block, walk
from services.doc_content import block_tree
from services.documents import fragment_of, refresh_projection_now
from services.policy import Action, Resource
from services.ydoc_roots import bind_roots

if TYPE_CHECKING:
    from services.deps import Deps

log = structlog.get_logger(__name__)


@dataclass(frozen=True)
class Located:
    """A block with where it sits (the block's JSON has its children)."""

    block: dict[str, Any]
    parent_id: str | None
    position: int


@dataclass(frozen=True)
class WriteResult:
    located: Located | None  # None after a delete
    version: int  # the log seq the write got (unchanged when nothing changed)
    applied: bool  # False: a retry of an applied attempt, or nothing to change


def _find(blocks: list[Block], block_id: str) -> Located | None:
    for block, parent, position, _path in walk(blocks):
        if block.id == block_id:
            return Located(block.to_json(), parent.id if parent else None, position)
    return None


async def _fragment(ctx: Deps, doc_id: str) -> str:
    doc = await repo.get_document(ctx.db, doc_id)
    if doc is None:
        raise NotFound("document not found")
    return fragment_of(ctx, doc)


def _locate(state: bytes, fragment: str, block_id: str) -> Located:
    found = _find(block_tree(bind_roots(state), fragment).blocks, block_id)
    if found is None:
        raise NotFound("block not found", fields={"block_id": ["no block with this id"]})
    return found


async def get_block(ctx: Deps, actor_id: str, doc_id: str, block_id: str) -> tuple[Located, int]:
    """The block as the live document has it, and the log seq that state covers."""
    await policy.require(ctx, actor_id, Action.DOCUMENT_VIEW, Resource.document(doc_id))
    fragment = await _fragment(ctx, doc_id)
    state = await doc_writes.current_state(ctx, doc_id)
    return _locate(state.update, fragment, block_id), state.seq


def _refuse(err: BlockEditError) -> AppError:
    if err.status == 404:
        return NotFound(str(err), fields=err.fields)
    if err.status == 409:
        return Conflict(str(err), code="not_a_block_tree", fields=err.fields)
    return ValidationFailed(str(err), fields=err.fields)


def check_block(block: dict[str, Any], prefix: str = "") -> None:
    """400 naming the field when a block (and its children) does not fit BlockNote's schema."""
    own = {k: v for k, v in block.items() if k not in ("id", "children")}
    errors = block_errors(own, prefix)
    for index, child in enumerate(block.get("children") or []):
        try:
            check_block(child, f"{prefix}children.{index}.")
        except ValidationFailed as err:
            errors.update(err.fields)
    if errors:
        raise ValidationFailed("the block does not fit the block schema", fields=errors)


def with_ids(block: dict[str, Any]) -> dict[str, Any]:
    """The block with an id on it and on every child (BlockNote ids are opaque strings)."""
    return {
        **block,
        "id": block.get("id") or block_ops.new_block_id(),
        "children": [with_ids(child) for child in block.get("children") or []],
    }


async def _write(
    ctx: Deps,
    actor_id: str,
    doc_id: str,
    *,
    op: str,
    key: str,
    edit: Any,
    block_id: str | None,
) -> WriteResult:
    """Lock, skip a recorded attempt, diff, publish, record; then the block as it now is."""
    await policy.require(ctx, actor_id, Action.DOCUMENT_EDIT, Resource.document(doc_id))
    fragment = await _fragment(ctx, doc_id)
    msg_id = f"block:{op}:{key}"
    async with doc_writes.write_lock(ctx, doc_id) as uow:
        conn = uow.conn
        done = await doc_writes.recorded_seq(conn, doc_id, msg_id)
        current = await doc_writes.current_state(ctx, doc_id, conn)
        if done is not None:
            return WriteResult(_maybe_locate(current.update, fragment, block_id), done, False)
        try:
            diff = edit(current.update, fragment)
        except BlockEditError as err:
            raise _refuse(err) from err
        if diff == EMPTY_UPDATE:
            located = _maybe_locate(current.update, fragment, block_id)
            return WriteResult(located, current.seq, False)
        seq = await doc_writes.publish_write(
            ctx, conn, doc_id, diff, msg_id=msg_id, kind="block", user=actor_id
        )
    await refresh_projection_now(ctx, doc_id)
    log.info("block.written", doc_id=doc_id, op=op, block_id=block_id, seq=seq)
    after = merge([current.update, diff])
    return WriteResult(_maybe_locate(after, fragment, block_id), seq, True)


def _maybe_locate(state: bytes, fragment: str, block_id: str | None) -> Located | None:
    if block_id is None:
        return None
    found = _find(block_tree(bind_roots(state), fragment).blocks, block_id)
    return found


async def create_block(
    ctx: Deps, actor_id: str, doc_id: str, block: dict[str, Any], place: Place, key: str
) -> WriteResult:
    check_block(block)
    block = with_ids(block)
    return await _write(
        ctx,
        actor_id,
        doc_id,
        op="create",
        key=key,
        block_id=block["id"],
        edit=lambda state, fragment: block_ops.create_block(state, fragment, block, place),
    )


async def update_block(
    ctx: Deps, actor_id: str, doc_id: str, block_id: str, patch: dict[str, Any], key: str
) -> WriteResult:
    """`patch`: `type`, `props` (merged into the current props) and/or `content`."""

    def edit(state: bytes, fragment: str) -> bytes:
        current = _locate(state, fragment, block_id).block
        new = merged_block(current, patch)
        # What the client sent is checked; content carried over from the document is not (it
        # may hold custom inline content of another app, which the schema does not list).
        sent = {"type": new["type"], "props": new["props"]}
        if "content" in patch:
            sent["content"] = patch["content"]
        check_block(sent)
        return block_ops.update_block(state, fragment, block_id, new)

    return await _write(
        ctx, actor_id, doc_id, op=f"update:{block_id}", key=key, block_id=block_id, edit=edit
    )


def merged_block(current: dict[str, Any], patch: dict[str, Any]) -> dict[str, Any]:
    """BlockNote's `updateBlock` semantics: props merge into the current ones (those the new type
    has, when the type changes); content is replaced when given, else kept when the new type holds
    the same kind of content."""
    new_type = patch.get("type", current["type"])
    known = prop_names(new_type)
    props = {k: v for k, v in current["props"].items() if k in known}
    props.update(patch.get("props", {}))
    new: dict[str, Any] = {"type": new_type, "props": props}
    if "content" in patch:
        new["content"] = patch["content"]
    elif content_kind(new_type) == content_kind(current["type"]) and "content" in current:
        new["content"] = current["content"]
    return new


async def move_block(
    ctx: Deps, actor_id: str, doc_id: str, block_id: str, place: Place, key: str
) -> WriteResult:
    return await _write(
        ctx,
        actor_id,
        doc_id,
        op=f"move:{block_id}",
        key=key,
        block_id=block_id,
        edit=lambda state, fragment: block_ops.move_block(state, fragment, block_id, place),
    )


async def delete_block(
    ctx: Deps, actor_id: str, doc_id: str, block_id: str, key: str
) -> WriteResult:
    return await _write(
        ctx,
        actor_id,
        doc_id,
        op=f"delete:{block_id}",
        key=key,
        block_id=None,
        edit=lambda state, fragment: block_ops.delete_block(state, fragment, block_id),
    )
