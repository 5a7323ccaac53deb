"""Per-document grants: share a document with a workspace member (or change/revoke their role).

A grant overrides the member's default on that one document in both directions (policy.py): it
is how a Guest sees a document, and how a Member gets less than editor. Changing one invalidates
the grantee's cached decisions and tells every node to re-check the grantee's open sockets on the
document (`permissions_cache.invalidate_user`, after the commit). A new or changed grant tells
the grantee (`access.granted`, services/notifications.py).
"""

from __future__ import annotations

from functools import partial
from typing import TYPE_CHECKING

from core.errors import NotFound
from models.repo import documents as repo
from services import activity, notifications, permissions_cache, policy
from services.document_entities import DocumentGrant
from services.policy import Action, Resource
from services.unit_of_work import UnitOfWork, unit_of_work

if TYPE_CHECKING:
    from services.deps import Deps


async def list_grants(ctx: Deps, actor_id: str, doc_id: str) -> list[DocumentGrant]:
    await policy.require(ctx, actor_id, Action.DOCUMENT_SHARE, Resource.document(doc_id))
    return [DocumentGrant.from_row(row) for row in await repo.list_grants(ctx.db, doc_id)]


async def _invalidate_on_commit(
    uow: UnitOfWork, ctx: Deps, workspace_id: str, user_id: str, doc_id: str
) -> None:
    """After the commit, the user's cached access first, then the event is published. A grant
    reaches the page's sub-pages too (unless they have their own), so with sub-pages every open
    socket of the user in the workspace re-checks, not only this page's."""
    if len(await repo.live_subtree(uow.conn, doc_id)) > 1:
        uow.on_commit(partial(permissions_cache.invalidate_user, ctx, user_id, workspace_id))
        return
    uow.on_commit(
        partial(
            permissions_cache.invalidate_user,
            ctx,
            user_id,
            workspace_id,
            resource_type="document",
            resource_id=doc_id,
        )
    )


async def set_grant(
    ctx: Deps, actor_id: str, doc_id: str, user_id: str, role: str
) -> DocumentGrant:
    """Create or change `user_id`'s role on the document (they must be in its workspace)."""
    access = await policy.require(ctx, actor_id, Action.DOCUMENT_SHARE, Resource.document(doc_id))
    if not await repo.is_workspace_member(ctx.db, access.workspace_id, user_id):
        raise NotFound("no such member in this workspace", fields={"user_id": ["not a member"]})
    async with unit_of_work(ctx) as uow:
        before = await repo.grant_role(uow.conn, doc_id, user_id)
        grant = DocumentGrant.from_row(
            await repo.upsert_grant(uow.conn, doc_id, user_id, role, actor_id)
        )
        if before != role:
            document = await repo.get_document(uow.conn, doc_id)
            await notifications.access_granted(
                uow,
                actor_id,
                user_id,
                access.workspace_id,
                title=document["title"] if document else "",
                role=role,
                document_id=doc_id,
            )
        await uow.emit(
            activity.event(
                access.workspace_id,
                "document.shared",
                actor_id,
                {"document_id": doc_id, "user_id": user_id, "role": role},
            )
        )
        await _invalidate_on_commit(uow, ctx, access.workspace_id, user_id, doc_id)
    return grant


async def remove_grant(ctx: Deps, actor_id: str, doc_id: str, user_id: str) -> None:
    access = await policy.require(ctx, actor_id, Action.DOCUMENT_SHARE, Resource.document(doc_id))
    async with unit_of_work(ctx) as uow:
        if not await repo.delete_grant(uow.conn, doc_id, user_id):
            raise NotFound("no grant for this user")
        await uow.emit(
            activity.event(
                access.workspace_id,
                "document.unshared",
                actor_id,
                {"document_id": doc_id, "user_id": user_id},
            )
        )
        await _invalidate_on_commit(uow, ctx, access.workspace_id, user_id, doc_id)
