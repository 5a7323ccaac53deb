"""Wire types of the exports: direct (`GET …/export/`) and stored (`POST …/exports/`)."""

from __future__ import annotations

from marshmallow import Schema, ValidationError, fields, validate, validates_schema

from handlers.schemas.documents import TITLE
from models.exports import EXPORT_STATES
from services.doc_import import IMPORT_FORMATS
from services.export import FORMATS
from services.export_jobs import WORKSPACE_FORMAT


class ExportQuerySchema(Schema):
    format = fields.String(
        required=True,
        validate=validate.OneOf(list(FORMATS)),
        metadata={"description": "markdown, html or pdf"},
    )
    version = fields.UUID(metadata={"description": "export this version (its id)"})
    seq = fields.Integer(
        validate=validate.Range(min=0, max=2**62),
        metadata={"description": "export the document as it was at this stream sequence"},
    )
    comments = fields.Boolean(
        load_default=False,
        metadata={"description": "the comment threads as footnotes (today's comments)"},
    )

    @validates_schema
    def _one_point(self, data: dict, **_: object) -> None:
        if "version" in data and "seq" in data:
            raise ValidationError("give version or seq, not both", "seq")


class ExportRequestSchema(ExportQuerySchema):
    """`POST /api/v1/documents/{doc_id}/exports/`: the same choices as the direct export."""


class WorkspaceExportRequestSchema(Schema):
    format = fields.String(
        load_default=WORKSPACE_FORMAT,
        validate=validate.OneOf([WORKSPACE_FORMAT]),
        metadata={"description": "zip (of Markdown files, the only one)"},
    )


class ExportStatusSchema(Schema):
    id = fields.UUID(required=True)
    status = fields.String(required=True, validate=validate.OneOf(EXPORT_STATES))
    format = fields.String(required=True, metadata={"description": "markdown, html, pdf or zip"})
    workspace_id = fields.UUID(required=True)
    document_id = fields.UUID(allow_none=True, metadata={"description": "null: a workspace zip"})
    version_id = fields.UUID(allow_none=True)
    seq = fields.Integer(allow_none=True, metadata={"description": "the stream seq exported"})
    comments = fields.Boolean(required=True, metadata={"description": "comments as footnotes"})
    filename = fields.String(allow_none=True)
    size_bytes = fields.Integer(allow_none=True)
    error = fields.String(allow_none=True, metadata={"description": "why it failed"})
    created_at = fields.AwareDateTime(required=True)
    finished_at = fields.AwareDateTime(allow_none=True)
    expires_at = fields.AwareDateTime(
        allow_none=True, metadata={"description": "the file is dropped then (download: 410)"}
    )
    status_url = fields.String(required=True)
    download_url = fields.String(allow_none=True, metadata={"description": "once ready"})


class ImportQuerySchema(Schema):
    format = fields.String(
        required=True,
        validate=validate.OneOf(IMPORT_FORMATS),
        metadata={"description": "markdown (the body is the text, `text/markdown`)"},
    )
    parent_id = fields.UUID(metadata={"description": "import as a sub-page of this page"})
    board_id = fields.UUID()
    title = fields.String(
        validate=TITLE,
        metadata={"description": "the title; without it a leading `# heading` is the title"},
    )
