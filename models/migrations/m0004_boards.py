"""Board contents (lists, cards, labels, assignees, checklists) and the board event log."""

import peewee

from models.board_items import BOARD_HEADER_COLUMNS_DDL, BOARD_ITEM_INDEXES_DDL, BOARD_ITEM_TABLES
from models.migrate import create_tables, run_sql


def up(db: peewee.Database) -> None:
    run_sql(db, *BOARD_HEADER_COLUMNS_DDL)
    create_tables(db, BOARD_ITEM_TABLES)
    run_sql(db, *BOARD_ITEM_INDEXES_DDL)
