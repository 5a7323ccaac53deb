"""The history of background job runs (one row per run that took the job's lock)."""

from __future__ import annotations

import peewee
from playhouse.postgres_ext import BinaryJSONField

from models.base import BaseModel, timestamptz
from models.workspaces import Workspace


class JobRunRow(BaseModel):
    """Written by the scheduler wrapper after each run, outside the run's own transaction, so a
    failed run (rolled back) still leaves its row: outcome `ok`, `failed` or `unavailable`."""

    job = peewee.TextField()
    node_id = peewee.TextField()
    started_at = timestamptz()
    finished_at = timestamptz()
    outcome = peewee.TextField()
    counts = BinaryJSONField(default=dict)
    error = peewee.TextField(null=True)

    class Meta:
        table_name = "job_runs"
        indexes = ((("job", "started_at"), False),)


class JobState(peewee.Model):
    """Per-job state shared by every node: paused by an admin (`paused_at`; every node's scheduler
    reads it before a scheduled run), and a sweep job's resume point (`cursor`), so a bounded run
    continues where the last one (on any node) stopped."""

    job = peewee.TextField(primary_key=True)
    paused_at = timestamptz(null=True)
    paused_by = peewee.UUIDField(null=True)
    cursor = peewee.TextField(null=True)
    updated_at = timestamptz(default_now=True)

    class Meta:
        table_name = "job_states"
        database = JobRunRow._meta.database


class ActivityReport(peewee.Model):
    """One workspace's activity over one week (the `generate_activity_reports` job), from the
    activity events its changes staged. One row per (workspace, week): the job is idempotent."""

    id = peewee.UUIDField(primary_key=True, constraints=[peewee.SQL("DEFAULT gen_random_uuid()")])
    workspace = peewee.ForeignKeyField(
        Workspace, on_delete="CASCADE", index=True, column_name="workspace_id"
    )
    week_start = timestamptz()
    week_end = timestamptz()
    # {"events", "edits", "new_documents", "cards_moved"}
    counts = BinaryJSONField(default=dict)
    # [{"user_id", "display_name", "events"}], most active first
    top_contributors = BinaryJSONField(default=list)
    created_at = timestamptz(default_now=True)

    class Meta:
        table_name = "activity_reports"
        database = JobRunRow._meta.database
        indexes = ((("workspace", "week_start"), True),)
