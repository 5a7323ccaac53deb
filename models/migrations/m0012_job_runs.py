"""A history row per background job run (start, end, outcome, counts, error)."""

import peewee

from models.jobs import JobRunRow
from models.migrate import create_tables


def up(db: peewee.Database) -> None:
    create_tables(db, [JobRunRow])
