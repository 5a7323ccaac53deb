"""Peewee base: the schema is defined once, here and in the sibling table modules.

Peewee owns the schema (DDL, migrations) and runs synchronously, so it is used only by the migration
runner and operator scripts. Request paths execute SQL through asyncpg (`models.db`).
"""

from __future__ import annotations

import peewee
from playhouse.postgres_ext import DateTimeTZField, PostgresqlExtDatabase

database = PostgresqlExtDatabase(None)

UUID_DEFAULT = peewee.SQL("DEFAULT gen_random_uuid()")
NOW_DEFAULT = peewee.SQL("DEFAULT now()")


class BaseModel(peewee.Model):
    """UUID primary key and creation time on every table."""

    id = peewee.UUIDField(primary_key=True, constraints=[UUID_DEFAULT])
    created_at = DateTimeTZField(constraints=[NOW_DEFAULT])

    class Meta:
        database = database
        legacy_table_names = False


def timestamptz(null: bool = False, default_now: bool = False) -> DateTimeTZField:
    """A `timestamptz` column; `default_now` adds a server-side default."""
    return DateTimeTZField(null=null, constraints=[NOW_DEFAULT] if default_now else None)
