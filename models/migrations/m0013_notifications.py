"""The notification inbox (`notifications`) and per-kind preferences (`notification_preferences`)."""

import peewee

from models.migrate import create_tables, run_sql
from models.notifications import NOTIFICATION_INDEXES_DDL, NOTIFICATION_TABLES


def up(db: peewee.Database) -> None:
    create_tables(db, NOTIFICATION_TABLES)
    run_sql(db, *NOTIFICATION_INDEXES_DDL)
