"""Workspaces, members and invitations: the action functions (one per change, Zulip style).

Each action asks the policy first (cheap, maybe cached: 404 for outsiders, 403 for members without
the right), then runs one transaction that locks the workspace row and re-reads the actor's role
from Postgres, so the rules below hold even against a stale cache or concurrent changes:

* nobody gives a role above their own; Admins cannot change or remove Owners;
* a workspace always keeps at least one Owner (last-Owner demotion, removal or leave → 409).

After the commit, and only then: the permission cache is invalidated for every user whose access
changed (with a revocation signal for their open WebSockets), then activity events are published.
"""

from __future__ import annotations

import hashlib
import re
import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import partial
from typing import TYPE_CHECKING, Any
from uuid import UUID

import asyncpg

from core.errors import Conflict, Forbidden, Gone, NotFound, ValidationFailed
from core.patch import UNSET, Unset, given, named_in
from models.repo import outbox as outbox_repo
from models.repo import users as users_repo
from models.repo import workspaces as repo
from services import activity, notifications, permissions_cache, policy
from services.notifications import NotificationDraft
from services.policy import Action, Resource, WorkspaceRole
from services.unit_of_work import UnitOfWork, unit_of_work
from services.workspace_entities import (
    Invitation,
    Inviter,
    MyWorkspace,
    PendingInvitation,
    Workspace,
    WorkspaceMember,
)

if TYPE_CHECKING:
    from services.deps import Deps

INVITATION_TOKEN_BYTES = 32  # 256 bits: unguessable, and only its SHA-256 is stored
# A token_urlsafe(32) is 43 characters; anything far longer or with other characters is not ours.
INVITATION_TOKEN_PATTERN = re.compile(r"^[A-Za-z0-9_-]{20,128}$")
INVITATION_EMAIL_KIND = "invitation_email"
SLUG_MAX_CHARS = 64
SLUG_ATTEMPTS = 5  # derived slugs get a random suffix on collision
PURGE_BATCH = 100


@dataclass(frozen=True)
class CreatedInvitation:
    invitation: Invitation
    token: str
    accept_path: str


@dataclass(frozen=True)
class WorkspacePatch:
    """A rename and/or re-slug (UNSET: unchanged); the name trimmed, the slug lower-cased."""

    name: str | Unset = UNSET
    slug: str | Unset = UNSET

    @classmethod
    def of(cls, body: Mapping[str, Any]) -> WorkspacePatch:
        patch = cls(**named_in(body, ("name", "slug")))
        return cls(
            UNSET if patch.name is UNSET else patch.name.strip(),
            UNSET if patch.slug is UNSET else patch.slug.lower(),
        )


@dataclass(frozen=True)
class PurgedWorkspace:
    workspace_id: str
    document_ids: list[str]


def accept_path(token: str) -> str:
    """The API route that accepts (POST, signed in); what the invite response gives API clients."""
    return f"/api/v1/invitations/{token}/accept/"


#: The web app's page for an invitation (served by `handlers/webapp.py`, which redacts `{token}`
#: in logs): what the mail links to, since a browser opening a link sends a GET, and accepting
#: needs the invitee signed in first.
INVITE_PAGE = "/invite/{token}"


def invite_path(token: str) -> str:
    return INVITE_PAGE.format(token=token)


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def slugify(name: str) -> str:
    slug = re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-")
    return slug[: SLUG_MAX_CHARS - 7].strip("-") or "workspace"


def _role(label: str | None) -> WorkspaceRole | None:
    return WorkspaceRole.parse(label)


def _with_role(workspace: Mapping[str, Any], role: str) -> MyWorkspace:
    """`workspace`: its repository row."""
    return MyWorkspace.from_row({**workspace, "my_role": role})


def _invalidate_on_commit(
    uow: UnitOfWork, ctx: Deps, workspace_id: str, *changed_users: str
) -> None:
    """After the commit, access first (a demoted user loses it on the next request), then the
    unit of work publishes the activity log."""
    for user_id in changed_users:
        uow.on_commit(partial(permissions_cache.invalidate_user, ctx, user_id, workspace_id))


async def _lock_and_role(
    conn: asyncpg.Connection, workspace_id: str, user_id: str
) -> tuple[Workspace, WorkspaceRole]:
    """Lock the workspace and read the actor's current role (authoritative, under the lock)."""
    workspace = await repo.lock_workspace(conn, workspace_id)
    role = _role(await repo.member_role(conn, workspace_id, user_id)) if workspace else None
    if workspace is None or role is None:
        raise NotFound("workspace not found")
    return Workspace.from_row(workspace), role


def _require_role(role: WorkspaceRole, needed: WorkspaceRole, what: str) -> None:
    if role < needed:
        raise Forbidden(f"only a workspace {needed.label} or above can {what}")


# --- workspaces ---------------------------------------------------------------------------------


async def create_workspace(ctx: Deps, actor_id: str, name: str, slug: str | None) -> MyWorkspace:
    """The creator becomes its Owner. A derived slug gets a random suffix when taken."""
    candidates = [slug.lower()] if slug else _derived_slugs(name)
    for candidate in candidates:
        try:
            return await _insert_workspace(ctx, actor_id, name, candidate)
        except asyncpg.UniqueViolationError as err:
            if slug:
                raise Conflict("this slug is taken", code="slug_taken") from err
    raise Conflict("could not find a free slug; pass one explicitly", code="slug_taken")


def _derived_slugs(name: str) -> list[str]:
    base = slugify(name)
    return [base] + [f"{base}-{secrets.token_hex(3)}" for _ in range(SLUG_ATTEMPTS - 1)]


async def _insert_workspace(ctx: Deps, actor_id: str, name: str, slug: str) -> MyWorkspace:
    async with unit_of_work(ctx) as uow:
        conn = uow.conn
        workspace = await repo.insert_workspace(conn, name, slug, actor_id)
        workspace_id = str(workspace["id"])
        await repo.add_member(conn, workspace_id, actor_id, WorkspaceRole.OWNER.label)
        await uow.emit(
            activity.event(
                workspace_id, "workspace.created", actor_id, {"name": name, "slug": slug}
            )
        )
        await uow.emit(
            activity.event(
                workspace_id,
                "member.added",
                actor_id,
                {"user_id": actor_id, "role": "owner", "via": "creation"},
            )
        )
    return _with_role(workspace, WorkspaceRole.OWNER.label)


async def get_workspace(ctx: Deps, actor_id: str, workspace_id: str) -> MyWorkspace:
    access = await policy.require(
        ctx, actor_id, Action.WORKSPACE_VIEW, Resource.workspace(workspace_id)
    )
    workspace = await repo.get_workspace(ctx.db, workspace_id)
    if workspace is None:
        raise NotFound("workspace not found")
    assert access.workspace_role is not None
    return _with_role(workspace, access.workspace_role.label)


async def list_my_workspaces(
    ctx: Deps, actor_id: str, limit: int, offset: int
) -> list[MyWorkspace]:
    rows = await repo.list_user_workspaces(ctx.db, actor_id, limit, offset)
    return [MyWorkspace.from_row(row) for row in rows]


async def update_workspace(
    ctx: Deps, actor_id: str, workspace_id: str, patch: WorkspacePatch
) -> MyWorkspace:
    """Rename or re-slug (Admin+)."""
    await policy.require(ctx, actor_id, Action.WORKSPACE_UPDATE, Resource.workspace(workspace_id))
    changes = given(patch, ("name", "slug"))
    if not changes:
        raise ValidationFailed("nothing to update")
    try:
        async with unit_of_work(ctx) as uow:
            conn = uow.conn
            _, role = await _lock_and_role(conn, workspace_id, actor_id)
            _require_role(role, WorkspaceRole.ADMIN, "update the workspace")
            workspace = await repo.update_workspace(conn, workspace_id, changes)
            await uow.emit(
                activity.event(workspace_id, "workspace.updated", actor_id, {"changes": changes})
            )
    except asyncpg.UniqueViolationError as err:
        raise Conflict("this slug is taken", code="slug_taken") from err
    return _with_role(workspace, role.label)


async def delete_workspace(ctx: Deps, actor_id: str, workspace_id: str) -> datetime:
    """Soft delete (Owner): everything in it is 404 at once; purged after the grace period.

    Returns when the purge may happen.
    """
    await policy.require(ctx, actor_id, Action.WORKSPACE_DELETE, Resource.workspace(workspace_id))
    async with unit_of_work(ctx) as uow:
        conn = uow.conn
        _, role = await _lock_and_role(conn, workspace_id, actor_id)
        _require_role(role, WorkspaceRole.OWNER, "delete the workspace")
        deleted_at = await repo.soft_delete_workspace(conn, workspace_id)
        purge_after = deleted_at + timedelta(seconds=ctx.settings.workspace_purge_grace_s)
        await uow.emit(
            activity.event(
                workspace_id, "workspace.deleted", actor_id, {"purge_after": purge_after}
            )
        )
        uow.on_commit(partial(permissions_cache.invalidate_workspace, ctx, workspace_id))
    return purge_after


async def purge_deleted_workspaces(
    ctx: Deps, older_than: timedelta | None = None
) -> list[PurgedWorkspace]:
    """Hard-delete workspaces soft-deleted more than `older_than` ago (default: the grace period).

    For the scheduled purge job. Rows cascade (members, invitations, boards, documents, grants);
    the returned document ids let the caller drop their JetStream subjects too.
    """
    grace = older_than
    if grace is None:
        grace = timedelta(seconds=ctx.settings.workspace_purge_grace_s)
    async with ctx.db.transaction() as conn:
        rows = await repo.purge_deleted(conn, grace.total_seconds(), PURGE_BATCH)
    return [PurgedWorkspace(str(r["id"]), [str(d) for d in r["document_ids"]]) for r in rows]


# --- members ------------------------------------------------------------------------------------


async def list_members(
    ctx: Deps, actor_id: str, workspace_id: str, limit: int, offset: int
) -> list[WorkspaceMember]:
    await policy.require(ctx, actor_id, Action.WORKSPACE_VIEW, Resource.workspace(workspace_id))
    rows = await repo.list_members(ctx.db, workspace_id, limit, offset)
    return [WorkspaceMember.from_row(row) for row in rows]


def _check_can_manage(actor: WorkspaceRole, target: WorkspaceRole, new: WorkspaceRole) -> None:
    _require_role(actor, WorkspaceRole.ADMIN, "manage members")
    if new > actor:
        raise Forbidden("you cannot give a role above your own", code="role_above_own")
    if target == WorkspaceRole.OWNER and actor < WorkspaceRole.OWNER:
        raise Forbidden("only an Owner can change or remove an Owner", code="cannot_manage_owner")


async def _ensure_not_last_owner(
    conn: asyncpg.Connection, workspace_id: str, role: WorkspaceRole
) -> None:
    if role == WorkspaceRole.OWNER and await repo.count_owners(conn, workspace_id) <= 1:
        raise Conflict(
            "a workspace must keep at least one Owner: transfer ownership first",
            code="last_owner",
        )


async def _target_role(conn: asyncpg.Connection, workspace_id: str, user_id: str) -> WorkspaceRole:
    role = _role(await repo.member_role(conn, workspace_id, user_id))
    if role is None:
        raise NotFound("member not found", code="member_not_found")
    return role


async def change_member_role(
    ctx: Deps, actor_id: str, workspace_id: str, user_id: str, new_label: str
) -> WorkspaceMember:
    await policy.require(
        ctx, actor_id, Action.WORKSPACE_MANAGE_MEMBERS, Resource.workspace(workspace_id)
    )
    new_role = WorkspaceRole[new_label.upper()]
    async with unit_of_work(ctx) as uow:
        conn = uow.conn
        _, actor_role = await _lock_and_role(conn, workspace_id, actor_id)
        old_role = await _target_role(conn, workspace_id, user_id)
        _check_can_manage(actor_role, old_role, new_role)
        if old_role != new_role:
            if new_role < old_role:
                await _ensure_not_last_owner(conn, workspace_id, old_role)
            await repo.set_member_role(conn, workspace_id, user_id, new_role.label)
            data = {"user_id": user_id, "old_role": old_role.label, "new_role": new_role.label}
            await uow.emit(activity.event(workspace_id, "member.role_changed", actor_id, data))
            _invalidate_on_commit(uow, ctx, workspace_id, user_id)
        member = await repo.get_member(conn, workspace_id, user_id)
    assert member is not None
    return WorkspaceMember.from_row(member)


async def remove_member(ctx: Deps, actor_id: str, workspace_id: str, user_id: str) -> None:
    """Admin+; removing yourself is leaving."""
    if user_id == actor_id:
        await leave_workspace(ctx, actor_id, workspace_id)
        return
    await policy.require(
        ctx, actor_id, Action.WORKSPACE_MANAGE_MEMBERS, Resource.workspace(workspace_id)
    )
    async with unit_of_work(ctx) as uow:
        conn = uow.conn
        _, actor_role = await _lock_and_role(conn, workspace_id, actor_id)
        role = await _target_role(conn, workspace_id, user_id)
        _check_can_manage(actor_role, role, WorkspaceRole.GUEST)
        await _ensure_not_last_owner(conn, workspace_id, role)
        await repo.delete_member(conn, workspace_id, user_id)
        data = {"user_id": user_id, "role": role.label}
        await uow.emit(activity.event(workspace_id, "member.removed", actor_id, data))
        _invalidate_on_commit(uow, ctx, workspace_id, user_id)


async def leave_workspace(ctx: Deps, actor_id: str, workspace_id: str) -> None:
    await policy.require(ctx, actor_id, Action.WORKSPACE_VIEW, Resource.workspace(workspace_id))
    async with unit_of_work(ctx) as uow:
        conn = uow.conn
        _, role = await _lock_and_role(conn, workspace_id, actor_id)
        await _ensure_not_last_owner(conn, workspace_id, role)
        await repo.delete_member(conn, workspace_id, actor_id)
        data = {"user_id": actor_id, "role": role.label}
        await uow.emit(activity.event(workspace_id, "member.left", actor_id, data))
        _invalidate_on_commit(uow, ctx, workspace_id, actor_id)


async def transfer_ownership(ctx: Deps, actor_id: str, workspace_id: str, user_id: str) -> None:
    """The target becomes Owner and the actor (an Owner) steps down to Admin."""
    await policy.require(
        ctx, actor_id, Action.WORKSPACE_TRANSFER_OWNERSHIP, Resource.workspace(workspace_id)
    )
    if user_id == actor_id:
        raise ValidationFailed(
            "you already own this workspace", fields={"user_id": ["must be another member"]}
        )
    async with unit_of_work(ctx) as uow:
        conn = uow.conn
        _, actor_role = await _lock_and_role(conn, workspace_id, actor_id)
        _require_role(actor_role, WorkspaceRole.OWNER, "transfer ownership")
        await _target_role(conn, workspace_id, user_id)
        await repo.set_member_role(conn, workspace_id, user_id, WorkspaceRole.OWNER.label)
        await repo.set_member_role(conn, workspace_id, actor_id, WorkspaceRole.ADMIN.label)
        data = {"from_user_id": actor_id, "to_user_id": user_id}
        await uow.emit(activity.event(workspace_id, "ownership.transferred", actor_id, data))
        _invalidate_on_commit(uow, ctx, workspace_id, actor_id, user_id)


# --- invitations --------------------------------------------------------------------------------


async def invite(
    ctx: Deps, actor_id: str, workspace_id: str, email: str, role_label: str
) -> CreatedInvitation:
    """Invite by email with a role up to the inviter's own (so Owner only from an Owner).

    The token is returned once (to the inviter) and written into the outbox row the mailer reads;
    the database keeps only its SHA-256.
    """
    await policy.require(ctx, actor_id, Action.WORKSPACE_INVITE, Resource.workspace(workspace_id))
    role = WorkspaceRole[role_label.upper()]
    email = email.strip()
    token = secrets.token_urlsafe(INVITATION_TOKEN_BYTES)
    expires_at = datetime.now(UTC) + timedelta(seconds=ctx.settings.invitation_ttl_s)
    async with unit_of_work(ctx) as uow:
        conn = uow.conn
        workspace, actor_role = await _lock_and_role(conn, workspace_id, actor_id)
        _require_role(actor_role, WorkspaceRole.MEMBER, "invite")
        if role > actor_role:
            raise Forbidden("you cannot invite with a role above your own", code="role_above_own")
        if await repo.is_member_email(conn, workspace_id, email):
            raise Conflict("this person is already a member", code="already_member")
        await repo.retire_expired_invitation(conn, workspace_id, email)
        try:
            async with conn.transaction():
                row = await repo.insert_invitation(
                    conn, workspace_id, email, role.label, hash_token(token), actor_id, expires_at
                )
        except asyncpg.UniqueViolationError as err:
            raise Conflict(
                "an invitation for this email is already pending; revoke it first",
                code="invitation_pending",
            ) from err
        invitation = Invitation.from_row(row)
        inviter_row = await users_repo.get_user(conn, actor_id)
        inviter = None if inviter_row is None else Inviter.from_row(inviter_row)
        await outbox_repo.insert(
            conn,
            INVITATION_EMAIL_KIND,
            _invitation_email(workspace, invitation, inviter, token),
        )
        data = {
            "invitation_id": invitation.id,
            "email": email,
            "role": role.label,
            "expires_at": expires_at,
        }
        await uow.emit(activity.event(workspace_id, "invitation.created", actor_id, data))
        await _notify_invitee(uow, workspace, invitation, inviter)
    return CreatedInvitation(invitation, token, accept_path(token))


async def _notify_invitee(
    uow: UnitOfWork, workspace: Workspace, invitation: Invitation, inviter: Inviter | None
) -> None:
    """An invitee who already has an account hears about it in their inbox too (the accept
    link stays in the email: the notification subject is readable by tools, the token is not)."""
    invitee = await users_repo.get_user_by_email(uow.conn, invitation.email)
    if invitee is None:
        return
    await notifications.notify(
        uow,
        NotificationDraft(
            recipient_id=UUID(str(invitee["id"])),
            kind=notifications.WORKSPACE_INVITED,
            actor_id=None if inviter is None else inviter.id,
            workspace_id=workspace.id,
            data={
                "workspace_name": workspace.name,
                "role": invitation.role,
                "invitation_id": str(invitation.id),
                "inviter_name": inviter.display_name if inviter else None,
                "expires_at": invitation.expires_at,
            },
        ),
    )


def _invitation_email(
    workspace: Workspace, invitation: Invitation, inviter: Inviter | None, token: str
) -> dict[str, Any]:
    """Everything the mailer needs; the only place besides the API response the token lives.
    Open JSON: the outbox row's payload, read back by `services/mailer.py`."""
    return {
        "invitation_id": str(invitation.id),
        "to": invitation.email,
        "workspace_id": str(workspace.id),
        "workspace_name": workspace.name,
        "inviter_id": str(inviter.id) if inviter else None,
        "inviter_name": inviter.display_name if inviter else None,
        "role": invitation.role,
        "invite_path": invite_path(token),
        "expires_at": invitation.expires_at.isoformat(),
    }


async def list_invitations(
    ctx: Deps, actor_id: str, workspace_id: str, limit: int, offset: int
) -> list[PendingInvitation]:
    """Pending invitations: all of them for Admins, a Member's own otherwise."""
    access = await policy.require(
        ctx, actor_id, Action.WORKSPACE_INVITE, Resource.workspace(workspace_id)
    )
    only_by = None if access.allows(Action.WORKSPACE_MANAGE_MEMBERS) else actor_id
    rows = await repo.list_pending_invitations(ctx.db, workspace_id, only_by, limit, offset)
    return [PendingInvitation.from_row(row) for row in rows]


async def revoke_invitation(
    ctx: Deps, actor_id: str, workspace_id: str, invitation_id: str
) -> None:
    """Admins revoke any pending invitation, Members their own. Revoking twice is a no-op."""
    await policy.require(ctx, actor_id, Action.WORKSPACE_INVITE, Resource.workspace(workspace_id))
    async with unit_of_work(ctx) as uow:
        conn = uow.conn
        _, actor_role = await _lock_and_role(conn, workspace_id, actor_id)
        row = await repo.lock_invitation(conn, workspace_id, invitation_id)
        if row is None:
            raise NotFound("invitation not found", code="invitation_not_found")
        invitation = Invitation.from_row(row)
        own = str(invitation.invited_by) == actor_id
        if not own and actor_role < WorkspaceRole.ADMIN:
            raise Forbidden("only Admins can revoke other people's invitations")
        if invitation.accepted_at is not None:
            raise Conflict("this invitation was already accepted", code="invitation_used")
        if invitation.revoked_at is None:
            await repo.revoke_invitation(conn, invitation_id)
            data = {"invitation_id": invitation_id, "email": invitation.email}
            await uow.emit(activity.event(workspace_id, "invitation.revoked", actor_id, data))


def _check_usable(invitation: Invitation, user_email: str) -> None:
    """Whose it is first (403), then whether it can still be used (410)."""
    if invitation.email.strip().lower() != user_email.strip().lower():
        raise Forbidden(
            "this invitation was sent to another email address", code="invitation_email_mismatch"
        )
    if invitation.accepted_at is not None:
        raise Gone("this invitation was already used", code="invitation_used")
    if invitation.revoked_at is not None:
        raise Gone("this invitation was revoked", code="invitation_revoked")
    if invitation.expires_at <= datetime.now(UTC):
        raise Gone("this invitation has expired", code="invitation_expired")


async def accept_invitation(ctx: Deps, user_id: str, token: str) -> MyWorkspace:
    """Join the workspace with the invited role; single use (atomic claim)."""
    if not INVITATION_TOKEN_PATTERN.match(token):
        raise NotFound("invitation not found", code="invitation_not_found")
    async with unit_of_work(ctx) as uow:
        conn = uow.conn
        row = await repo.find_invitation_by_hash(conn, hash_token(token))
        if row is None or row["workspace_deleted_at"] is not None:
            raise NotFound("invitation not found", code="invitation_not_found")
        invitation = Invitation.from_row(row)
        user = await users_repo.get_user(conn, user_id)
        if user is None:
            raise NotFound("invitation not found", code="invitation_not_found")
        _check_usable(invitation, user["email"])
        invitation_id = str(invitation.id)
        workspace_id = str(invitation.workspace_id)
        if not await repo.claim_invitation(conn, invitation_id, user_id):
            raise Gone("this invitation was already used", code="invitation_used")
        role = invitation.role
        if not await repo.add_member(conn, workspace_id, user_id, role):
            raise Conflict("you are already a member of this workspace", code="already_member")
        accepted = {"invitation_id": invitation_id, "user_id": user_id, "role": role}
        added = {"user_id": user_id, "role": role, "via": "invitation"}
        await uow.emit(activity.event(workspace_id, "invitation.accepted", user_id, accepted))
        await uow.emit(activity.event(workspace_id, "member.added", user_id, added))
        await notifications.settle_invitation(uow, user_id, workspace_id)
        workspace = await repo.get_workspace(conn, workspace_id)
        _invalidate_on_commit(uow, ctx, workspace_id, user_id)
    assert workspace is not None
    return _with_role(workspace, role)
