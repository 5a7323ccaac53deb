"""Background export files (`exports`): status, the file while it is kept, its expiry."""

import peewee

from models.exports import ExportRow
from models.migrate import create_tables


def up(db: peewee.Database) -> None:
    create_tables(db, [ExportRow])
