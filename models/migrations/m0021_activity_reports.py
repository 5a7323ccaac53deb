"""Weekly workspace activity reports, and an index to read a week of activity events from the
outbox (where every activity event is staged and kept)."""

import peewee

from models.jobs import ActivityReport
from models.migrate import create_tables, run_sql


def up(db: peewee.Database) -> None:
    create_tables(db, [ActivityReport])
    run_sql(
        db,
        "CREATE INDEX IF NOT EXISTS outbox_activity_created ON outbox (created_at)"
        " WHERE kind = 'activity_event'",
    )
