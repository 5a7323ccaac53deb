"""Wire types of workspaces, members, invitations and the workspace-scoped listings."""

from __future__ import annotations

from typing import Any

from marshmallow import Schema, ValidationError, fields, validate, validates

from services.mention_candidates import DEFAULT_CANDIDATES, MAX_CANDIDATES, MAX_QUERY_CHARS

ROLES = ["owner", "admin", "member", "guest"]
RESOURCE_ROLES = ["viewer", "commenter", "editor", "manager"]
NAME = validate.Length(min=1, max=100)
# Lowercase letters, digits and single dashes; compared case-insensitively.
SLUG = validate.Regexp(
    r"^[A-Za-z0-9]+(?:-[A-Za-z0-9]+)*$", error="letters, digits and single dashes only"
)


def _not_blank(value: str) -> None:
    if not value.strip():
        raise ValidationError("must not be blank")


# --- requests -----------------------------------------------------------------------------------


class WorkspaceCreateSchema(Schema):
    name = fields.String(required=True, validate=[NAME, _not_blank])
    slug = fields.String(validate=[validate.Length(min=1, max=64), SLUG])


class WorkspaceUpdateSchema(Schema):
    name = fields.String(validate=[NAME, _not_blank])
    slug = fields.String(validate=[validate.Length(min=1, max=64), SLUG])


class WorkspaceMemberRoleSchema(Schema):
    role = fields.String(required=True, validate=validate.OneOf(ROLES))


class TransferOwnershipSchema(Schema):
    user_id = fields.UUID(required=True)


class InviteSchema(Schema):
    email = fields.Email(required=True, validate=validate.Length(max=254))
    role = fields.String(load_default="member", validate=validate.OneOf(ROLES))

    @validates("email")
    def _trimmed(self, value: str, **_: Any) -> None:
        if value != value.strip():
            raise ValidationError("must not have surrounding spaces")


# --- responses ----------------------------------------------------------------------------------


class WorkspaceFieldsSchema(Schema):
    """A workspace's own fields (the member view adds `my_role`, the admin view `deleted_at`)."""

    id = fields.UUID(required=True)
    name = fields.String(required=True)
    slug = fields.String(required=True)
    created_by = fields.UUID(allow_none=True)
    created_at = fields.DateTime(required=True)
    updated_at = fields.DateTime(required=True)


class WorkspaceSchema(WorkspaceFieldsSchema):
    my_role = fields.String(required=True, validate=validate.OneOf(ROLES))


class WorkspaceDeletedSchema(Schema):
    id = fields.UUID(required=True)
    purge_after = fields.DateTime(required=True)


class WorkspaceMemberSchema(Schema):
    user_id = fields.UUID(required=True)
    email = fields.String(required=True)
    display_name = fields.String(required=True)
    role = fields.String(required=True, validate=validate.OneOf(ROLES))
    joined_at = fields.DateTime(required=True)


class InvitationSchema(Schema):
    id = fields.UUID(required=True)
    workspace_id = fields.UUID(required=True)
    email = fields.String(required=True)
    role = fields.String(required=True, validate=validate.OneOf(ROLES))
    invited_by = fields.UUID(allow_none=True)
    invited_by_name = fields.String(allow_none=True)
    expires_at = fields.DateTime(required=True)
    created_at = fields.DateTime(required=True)


class CreatedInvitationSchema(InvitationSchema):
    token = fields.String(required=True)
    accept_path = fields.String(required=True)


class BoardSummarySchema(Schema):
    id = fields.UUID(required=True)
    workspace_id = fields.UUID(required=True)
    name = fields.String(required=True)
    description = fields.String(required=True)
    color = fields.String(allow_none=True)
    is_private = fields.Boolean(required=True)
    created_by = fields.UUID(allow_none=True)
    created_at = fields.DateTime(required=True)
    updated_at = fields.DateTime(required=True)
    archived_at = fields.DateTime(allow_none=True)
    my_role = fields.String(required=True, validate=validate.OneOf(RESOURCE_ROLES))


class DocumentSummarySchema(Schema):
    id = fields.UUID(required=True)
    workspace_id = fields.UUID(required=True)
    board_id = fields.UUID(allow_none=True)
    parent_id = fields.UUID(allow_none=True)
    title = fields.String(required=True)
    is_private = fields.Boolean(required=True)
    created_by = fields.UUID(allow_none=True)
    created_at = fields.DateTime(required=True)
    updated_at = fields.DateTime(required=True)
    my_role = fields.String(required=True, validate=validate.OneOf(RESOURCE_ROLES))


def page_schema(item: type[Schema], name: str) -> type[Schema]:
    """`{"items": [...], "limit", "offset", "next_offset"}`: limit/offset pagination."""
    return Schema.from_dict(
        {
            "items": fields.List(fields.Nested(item), required=True),
            "limit": fields.Integer(required=True),
            "offset": fields.Integer(required=True),
            "next_offset": fields.Integer(allow_none=True, required=True),
        },
        name=name,
    )


WorkspacePageSchema = page_schema(WorkspaceSchema, "WorkspacePage")
WorkspaceMemberPageSchema = page_schema(WorkspaceMemberSchema, "WorkspaceMemberPage")
InvitationPageSchema = page_schema(InvitationSchema, "InvitationPage")
BoardSummaryPageSchema = page_schema(BoardSummarySchema, "BoardSummaryPage")
DocumentSummaryPageSchema = page_schema(DocumentSummarySchema, "DocumentSummaryPage")


class MentionableQuerySchema(Schema):
    q = fields.String(
        load_default="",
        validate=validate.Length(max=MAX_QUERY_CHARS),
        metadata={"description": "prefix of a display name, of a word in it, or of an email"},
    )
    document_id = fields.UUID(
        metadata={"description": "mark who may view this document (needs document:comment)"}
    )
    limit = fields.Integer(
        load_default=DEFAULT_CANDIDATES, validate=validate.Range(min=1, max=MAX_CANDIDATES)
    )


class MentionCandidateSchema(Schema):
    user_id = fields.UUID(required=True)
    display_name = fields.String(required=True)
    email = fields.String(required=True)
    role = fields.String(required=True, validate=validate.OneOf(ROLES))
    can_view = fields.Boolean(
        allow_none=True,
        required=True,
        metadata={"description": "may view `document_id` (null without one)"},
    )


class MentionCandidatesSchema(Schema):
    items = fields.List(fields.Nested(MentionCandidateSchema), required=True)
