"""Per-job shared state: paused by an admin (honoured by every node), a sweep's resume point."""

import peewee

from models.jobs import JobState
from models.migrate import create_tables


def up(db: peewee.Database) -> None:
    create_tables(db, [JobState])
