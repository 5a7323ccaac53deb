"""Wire types of `GET /api/v1/documents/{doc_id}/export/`."""

from __future__ import annotations

from marshmallow import Schema, ValidationError, fields, validate, validates_schema

from services.export import FORMATS


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

    @validates_schema
    def _one_point(self, data: dict, **_: object) -> None:
        if "version" in data and "seq" in data:
            raise ValidationError("give version or seq, not both", "seq")
