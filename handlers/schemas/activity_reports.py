"""Weekly workspace activity reports (services/activity_reports.py)."""

from __future__ import annotations

from marshmallow import Schema, fields

from handlers.schemas.workspaces import page_schema


class ReportCountsSchema(Schema):
    events = fields.Integer(required=True)
    edits = fields.Integer(
        required=True, metadata={"description": "`*.updated` and `document.restored` events"}
    )
    new_documents = fields.Integer(required=True)
    cards_moved = fields.Integer(required=True)


class ContributorSchema(Schema):
    user_id = fields.String(required=True)
    display_name = fields.String(allow_none=True, required=True)
    events = fields.Integer(required=True)


class ActivityReportSchema(Schema):
    id = fields.UUID(required=True)
    workspace_id = fields.UUID(required=True)
    week_start = fields.DateTime(required=True, metadata={"description": "Monday 00:00 UTC"})
    week_end = fields.DateTime(required=True)
    counts = fields.Nested(ReportCountsSchema, required=True)
    top_contributors = fields.List(fields.Nested(ContributorSchema), required=True)
    created_at = fields.DateTime(required=True)


ActivityReportPageSchema = page_schema(ActivityReportSchema, "ActivityReportPage")


class ReportEmailSchema(Schema):
    """Whether the caller (an Owner/Admin) gets the weekly report by email."""

    # JSON true/false only, like the other settings (no "yes").
    email = fields.Boolean(required=True, truthy={True}, falsy={False})
