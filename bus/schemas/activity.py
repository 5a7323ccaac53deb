"""Workspace activity events on `collab.workspace.<workspace_id>.activity` (stream COLLAB_EVENTS).

Every event has the same envelope; `type` is `<area>.<verb>` and `data` depends on it. The types
below are emitted by the workspace service and their `data` is validated field by field; other
areas (boards: `board.*`, `list.*`, `card.*`; documents: `document.*`) publish to the same subject
with any `type` matching `TYPE_PATTERN` and may register their data schema in `DATA_SCHEMAS`.
Consumers must ignore types they do not know. Published with `Nats-Msg-Id` = `id`, so a consumer
can deduplicate on it.
"""

from __future__ import annotations

from typing import Any

from marshmallow import Schema, ValidationError, fields, validate, validates_schema

ROLE = validate.OneOf(["owner", "admin", "member", "guest"])
TYPE_PATTERN = r"^[a-z][a-z_]*\.[a-z][a-z_]*$"


class WorkspaceCreatedData(Schema):
    name = fields.String(required=True)
    slug = fields.String(required=True)


class WorkspaceUpdatedData(Schema):
    changes = fields.Dict(keys=fields.String(), values=fields.Raw(), required=True)


class WorkspaceDeletedData(Schema):
    purge_after = fields.DateTime(required=True)


class MemberAddedData(Schema):
    user_id = fields.UUID(required=True)
    role = fields.String(required=True, validate=ROLE)
    via = fields.String(required=True, validate=validate.OneOf(["creation", "invitation"]))


class MemberRoleChangedData(Schema):
    user_id = fields.UUID(required=True)
    old_role = fields.String(required=True, validate=ROLE)
    new_role = fields.String(required=True, validate=ROLE)


class MemberGoneData(Schema):
    """`member.removed` (by an Admin or Owner) and `member.left` (by themselves)."""

    user_id = fields.UUID(required=True)
    role = fields.String(required=True, validate=ROLE)


class OwnershipTransferredData(Schema):
    from_user_id = fields.UUID(required=True)
    to_user_id = fields.UUID(required=True)


class InvitationCreatedData(Schema):
    invitation_id = fields.UUID(required=True)
    email = fields.String(required=True)
    role = fields.String(required=True, validate=ROLE)
    expires_at = fields.DateTime(required=True)


class InvitationAcceptedData(Schema):
    invitation_id = fields.UUID(required=True)
    user_id = fields.UUID(required=True)
    role = fields.String(required=True, validate=ROLE)


class InvitationRevokedData(Schema):
    invitation_id = fields.UUID(required=True)
    email = fields.String(required=True)


DATA_SCHEMAS: dict[str, type[Schema]] = {
    "workspace.created": WorkspaceCreatedData,
    "workspace.updated": WorkspaceUpdatedData,
    "workspace.deleted": WorkspaceDeletedData,
    "member.added": MemberAddedData,
    "member.role_changed": MemberRoleChangedData,
    "member.removed": MemberGoneData,
    "member.left": MemberGoneData,
    "ownership.transferred": OwnershipTransferredData,
    "invitation.created": InvitationCreatedData,
    "invitation.accepted": InvitationAcceptedData,
    "invitation.revoked": InvitationRevokedData,
}


class ActivityEventSchema(Schema):
    """The envelope; `data` is checked against `DATA_SCHEMAS[type]` when the type is known."""

    type = fields.String(required=True, validate=validate.Regexp(TYPE_PATTERN))
    id = fields.UUID(required=True)
    workspace_id = fields.UUID(required=True)
    # None for system actions (e.g. the purge job).
    actor_id = fields.UUID(required=True, allow_none=True)
    at = fields.DateTime(required=True)
    data = fields.Dict(keys=fields.String(), values=fields.Raw(), required=True)

    @validates_schema
    def _data_matches_type(self, event: dict[str, Any], **_: Any) -> None:
        schema = DATA_SCHEMAS.get(event.get("type", ""))
        if schema is None:
            return
        errors = schema().validate(event.get("data") or {})
        if errors:
            raise ValidationError(errors, field_name="data")
