"""Wire types of `/api/v1/documents/`: headers, content, versions.

Request schemas raise on unknown fields (marshmallow's default), so `workspace_id`, `created_by`,
`version` and the like in a PATCH are a 400, never silently applied (S14).
"""

from __future__ import annotations

from marshmallow import Schema, ValidationError, fields, validate

from handlers.schemas.common import PageQuerySchema
from handlers.schemas.workspaces import DocumentSummaryPageSchema, page_schema
from services.documents import MAX_FRAGMENT_CHARS, MAX_TITLE_CHARS

TITLE = validate.Length(max=MAX_TITLE_CHARS)
VERSION_NAME = validate.Length(min=1, max=200)
VERSION_KINDS = ["auto", "named", "restore"]
RESOURCE_ROLES = ["viewer", "commenter", "editor", "manager"]


def _not_blank(value: str) -> None:
    if not value.strip():
        raise ValidationError("must not be blank")


def _root_name(value: str) -> None:
    if not value.isprintable() or value != value.strip():
        raise ValidationError("must be printable, without surrounding spaces")


# A Yjs root name (`ydoc.getXmlFragment(name)`): the fragment holding the block tree.
FRAGMENT = fields.String(
    allow_none=True,
    validate=[validate.Length(min=1, max=MAX_FRAGMENT_CHARS), _root_name],
    metadata={"description": "Y.XmlFragment holding the block tree; null: the server default"},
)


# --- requests -----------------------------------------------------------------------------------


class DocumentCreateSchema(Schema):
    workspace_id = fields.UUID(required=True)
    board_id = fields.UUID(allow_none=True, load_default=None)
    parent_id = fields.UUID(allow_none=True, load_default=None)
    title = fields.String(load_default="", validate=TITLE)
    fragment = FRAGMENT


class DocumentUpdateSchema(Schema):
    title = fields.String(validate=TITLE)
    # null moves the page to the top level of its workspace.
    parent_id = fields.UUID(allow_none=True)
    fragment = FRAGMENT


class DocumentListQuerySchema(PageQuerySchema):
    workspace_id = fields.UUID(required=True)
    board_id = fields.UUID()
    parent_id = fields.UUID()
    # true: only pages without a parent (a workspace's page tree roots).
    top_level = fields.Boolean(load_default=False)


class DuplicateSchema(Schema):
    title = fields.String(validate=TITLE)


class VersionCreateSchema(Schema):
    name = fields.String(required=True, validate=[VERSION_NAME, _not_blank])


class PrivacyPutSchema(Schema):
    # JSON true/false only: a security setting does not take "yes" or 1 for an answer.
    is_private = fields.Boolean(
        required=True,
        allow_none=True,
        truthy={True},
        falsy={False},
        metadata={"description": "true / false, or null: as the parent page"},
    )


class PrivacySchema(Schema):
    id = fields.UUID(required=True)
    is_private = fields.Boolean(required=True, metadata={"description": "effective"})
    own = fields.Boolean(
        required=True, allow_none=True, metadata={"description": "null: inherited from the parent"}
    )


class GrantPutSchema(Schema):
    role = fields.String(required=True, validate=validate.OneOf(RESOURCE_ROLES))


# --- responses ----------------------------------------------------------------------------------


class DocumentHeaderSchema(Schema):
    id = fields.UUID(required=True)
    workspace_id = fields.UUID(required=True)
    board_id = fields.UUID(allow_none=True)
    parent_id = fields.UUID(allow_none=True)
    title = fields.String(required=True)
    fragment = fields.String(allow_none=True)
    created_by = fields.UUID(allow_none=True)
    created_at = fields.DateTime(required=True)
    updated_at = fields.DateTime(required=True)


class BlockSchema(Schema):
    """One block as BlockNote's JSON has it (plus `text`, its plain text)."""

    id = fields.String(required=True)
    type = fields.String(required=True)
    props = fields.Dict(keys=fields.String(), values=fields.Raw())
    content = fields.Raw(
        metadata={
            "description": "inline content (text runs with styles, links, inline nodes) or a "
            "table's rows; absent for blocks without content (image, divider)"
        }
    )
    text = fields.String()
    children = fields.List(fields.Raw(), metadata={"description": "nested blocks (same shape)"})


class RootSchema(Schema):
    type = fields.String(
        required=True, validate=validate.OneOf(["text", "map", "array", "xml_fragment"])
    )
    value = fields.Raw(
        required=True,
        metadata={"description": "str, object, list, or ProseMirror JSON for a fragment"},
    )
    delta = fields.List(fields.Raw(), metadata={"description": "a formatted Text's runs"})


class ContentSchema(Schema):
    """The CRDT doc as JSON: the block tree of the document's fragment, and every root."""

    fragment = fields.String(required=True)
    layout = fields.String(
        required=True, validate=validate.OneOf(["blocknote", "prosemirror", "empty"])
    )
    blocks = fields.List(fields.Nested(BlockSchema), required=True)
    roots = fields.Dict(keys=fields.String(), values=fields.Nested(RootSchema), required=True)


class DocumentSchema(DocumentHeaderSchema):
    version = fields.Integer(
        required=True, metadata={"description": "stream sequence the content covers (0: empty)"}
    )
    content = fields.Nested(ContentSchema, required=True)


class VersionRefSchema(Schema):
    """A version named in a diff."""

    id = fields.UUID(required=True)
    seq = fields.Integer(required=True)
    kind = fields.String(required=True, validate=validate.OneOf(VERSION_KINDS))
    name = fields.String(allow_none=True)
    created_at = fields.DateTime(required=True)


class VersionSchema(VersionRefSchema):
    document_id = fields.UUID(required=True)
    created_by = fields.UUID(allow_none=True)


class PersonSchema(Schema):
    user_id = fields.String(required=True, metadata={"description": "the log's Collab-User"})
    display_name = fields.String(allow_none=True)


class VersionDetailSchema(VersionSchema):
    content = fields.Nested(ContentSchema, required=True)
    authors = fields.List(
        fields.Nested(PersonSchema),
        required=True,
        metadata={"description": "users whose updates the version contains"},
    )
    edited_by = fields.List(
        fields.Nested(PersonSchema),
        required=True,
        metadata={"description": "users with updates since the previous version"},
    )


class BlockChangesSchema(Schema):
    added = fields.List(fields.Dict(), required=True)
    removed = fields.List(fields.Dict(), required=True)
    moved = fields.List(fields.Dict(), required=True)
    changed = fields.List(
        fields.Dict(),
        required=True,
        metadata={"description": "{id, type?, props?, text? (ops), content_changed?}"},
    )


class RootChangesSchema(Schema):
    added = fields.List(fields.String(), required=True)
    removed = fields.List(fields.String(), required=True)
    changed = fields.List(fields.String(), required=True)


class VersionDiffSchema(Schema):
    from_ = fields.Nested(VersionRefSchema, required=True, data_key="from")
    to = fields.Nested(VersionRefSchema, required=True)
    fragment = fields.String(required=True)
    blocks = fields.Nested(BlockChangesSchema, required=True)
    roots = fields.Nested(RootChangesSchema, required=True)


class RestoreResultSchema(Schema):
    restored_from = fields.UUID(required=True)
    version = fields.Nested(
        VersionSchema,
        required=True,
        allow_none=True,
        metadata={"description": "the 'restore' version recorded; null: nothing to change"},
    )
    applied = fields.Boolean(
        required=True,
        metadata={
            "description": "false: a retry of an attempt already applied (version: the first "
            "attempt's), or the document already equals the version (version: null)"
        },
    )


class DocumentGrantSchema(Schema):
    user_id = fields.UUID(required=True)
    email = fields.String(required=True)
    display_name = fields.String(required=True)
    role = fields.String(required=True, validate=validate.OneOf(RESOURCE_ROLES))
    granted_by = fields.UUID(allow_none=True)
    created_at = fields.DateTime(required=True)


class DocumentGrantListSchema(Schema):
    items = fields.List(fields.Nested(DocumentGrantSchema), required=True)


VersionPageSchema = page_schema(VersionSchema, "VersionPage")
# The list item is the same as the workspace-scoped listing's (GET /workspaces/{id}/documents/).
DocumentPageSchema = DocumentSummaryPageSchema
