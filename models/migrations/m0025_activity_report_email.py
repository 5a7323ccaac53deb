"""Workspace Owners/Admins can ask for the weekly activity report by email."""

import peewee

from models.migrate import run_sql


def up(db: peewee.Database) -> None:
    run_sql(
        db,
        "ALTER TABLE workspace_members ADD COLUMN IF NOT EXISTS activity_report_email boolean"
        " NOT NULL DEFAULT false",
    )
