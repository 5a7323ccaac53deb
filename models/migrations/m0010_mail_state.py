"""Outbox rows the mailer gave up on: `failed_at` (with `last_error`) tells them from sent ones.

A sent message gets `processed_at` alone; a failed one gets both, so neither is picked up again."""

import peewee

from models.migrate import run_sql


def up(db: peewee.Database) -> None:
    run_sql(db, "ALTER TABLE outbox ADD COLUMN IF NOT EXISTS failed_at timestamptz")
