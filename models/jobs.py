"""The history of background job runs (one row per run that took the job's lock)."""

from __future__ import annotations

import peewee
from playhouse.postgres_ext import BinaryJSONField

from models.base import BaseModel, timestamptz


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
