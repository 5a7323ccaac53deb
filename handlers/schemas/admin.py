"""Admin API bodies (`/api/v1/admin/…`)."""

from __future__ import annotations

from marshmallow import Schema, fields, validate

from handlers.schemas.auth import UserSchema
from handlers.schemas.common import DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE
from handlers.schemas.workspaces import WorkspaceFieldsSchema


class AdminUserQuerySchema(Schema):
    """Keyset by email: `after` is the last email of the previous page."""

    limit = fields.Integer(
        load_default=DEFAULT_PAGE_SIZE, validate=validate.Range(min=1, max=MAX_PAGE_SIZE)
    )
    after = fields.String(load_default="", validate=validate.Length(max=254))


class AdminUserSchema(UserSchema):
    """The user as `/auth/me/` shows it, plus the two flags an admin manages."""

    is_active = fields.Boolean(required=True)
    is_admin = fields.Boolean(required=True)


class AdminUserPageSchema(Schema):
    items = fields.List(fields.Nested(AdminUserSchema), required=True)
    next_after = fields.String(allow_none=True, required=True)


class AdminWorkspaceSchema(WorkspaceFieldsSchema):
    deleted_at = fields.DateTime(allow_none=True, required=True)


class AdminWorkspacePageSchema(Schema):
    items = fields.List(fields.Nested(AdminWorkspaceSchema), required=True)
    limit = fields.Integer(required=True)
    offset = fields.Integer(required=True)
    next_offset = fields.Integer(allow_none=True, required=True)


class JobRunSchema(Schema):
    id = fields.String(required=True)
    job = fields.String(required=True)
    node_id = fields.String(required=True)
    started_at = fields.DateTime(required=True)
    finished_at = fields.DateTime(required=True)
    outcome = fields.String(required=True)
    counts = fields.Dict(keys=fields.String(), values=fields.Float(), required=True)
    error = fields.String(allow_none=True, required=True)


class JobSchema(Schema):
    name = fields.String(required=True)
    interval_s = fields.Float(required=True)
    next_run_at = fields.DateTime(allow_none=True, required=True)
    paused = fields.Boolean(required=True)
    paused_at = fields.DateTime(allow_none=True, required=True)
    paused_by = fields.String(allow_none=True, required=True)
    last_runs = fields.List(fields.Nested(JobRunSchema), required=True)


class JobListSchema(Schema):
    items = fields.List(fields.Nested(JobSchema), required=True)


class JobRunNowSchema(Schema):
    ran = fields.Boolean(required=True)
    job = fields.Nested(JobSchema, required=True)


class StreamUsageSchema(Schema):
    messages = fields.Integer(required=True)
    bytes = fields.Integer(required=True)
    first_seq = fields.Integer(required=True)
    last_seq = fields.Integer(required=True)
    subjects = fields.Integer(required=True)
    max_bytes = fields.Integer(required=True, metadata={"description": "-1: no limit"})
    max_msgs = fields.Integer(required=True)
    max_msgs_per_subject = fields.Integer(required=True)
    max_msg_size = fields.Integer(required=True)
    discard = fields.String(required=True)
    discard_new_per_subject = fields.Boolean(required=True)
    largest_subject = fields.String(allow_none=True, required=True)
    largest_subject_msgs = fields.Integer(required=True)


class StreamFindingSchema(Schema):
    level = fields.String(required=True, validate=validate.OneOf(["ok", "warning", "critical"]))
    limit = fields.String(required=True)
    used = fields.Integer(required=True)
    maximum = fields.Integer(required=True)
    fraction = fields.Float(required=True)


class StreamThresholdsSchema(Schema):
    warning = fields.Float(required=True)
    critical = fields.Float(required=True)


class StreamHealthSchema(Schema):
    stream = fields.String(required=True)
    level = fields.String(required=True, validate=validate.OneOf(["ok", "warning", "critical"]))
    thresholds = fields.Nested(StreamThresholdsSchema, required=True)
    usage = fields.Nested(StreamUsageSchema, required=True)
    findings = fields.List(fields.Nested(StreamFindingSchema), required=True)
