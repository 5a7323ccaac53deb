"""Comment threads, comments and reactions (`models/comments.py`)."""

import peewee

from models.comments import COMMENT_TABLES
from models.migrate import create_tables


def up(db: peewee.Database) -> None:
    create_tables(db, COMMENT_TABLES)
