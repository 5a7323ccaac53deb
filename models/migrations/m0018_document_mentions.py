"""Body mentions: the (document, block, user) pairs already seen and the scan cursor per document.

Documents that exist already get a cursor of -1, so mentions written before detection existed are
recorded silently at their next scan instead of notifying everyone at once after the upgrade."""

import peewee

from models.mentions import MENTION_TABLES
from models.migrate import create_tables, run_sql


def up(db: peewee.Database) -> None:
    create_tables(db, MENTION_TABLES)
    run_sql(
        db,
        "INSERT INTO document_mention_scans (document_id, seq)"
        " SELECT id, -1 FROM documents ON CONFLICT (document_id) DO NOTHING",
    )
