"""Versioned schema migrations.

Each migration is a module `models/migrations/mNNNN_<name>.py` with `up(db)`. Tables are created from
the peewee models with `CREATE TABLE IF NOT EXISTS` and later changes use idempotent DDL
(`ADD COLUMN IF NOT EXISTS`, `CREATE INDEX IF NOT EXISTS`), so a fresh database and an upgraded one
end in the same schema. Applied versions are recorded in `schema_migrations`; a session advisory lock
serialises nodes that start at the same time. Runs synchronously: it is a startup step, never on the
IOLoop.
"""

from __future__ import annotations

import importlib
import pkgutil
import re
from collections.abc import Sequence
from dataclasses import dataclass
from types import ModuleType
from urllib.parse import urlparse

import peewee

from models.base import database

MIGRATION_LOCK_KEY = 7_245_190_001  # arbitrary constant shared by all nodes
_NAME = re.compile(r"^m(\d{4})_(\w+)$")


@dataclass(frozen=True)
class Migration:
    version: int
    name: str
    module: ModuleType


def discover() -> list[Migration]:
    """All migration modules in version order; versions must be unique and contiguous."""
    import models.migrations as package

    found = []
    for info in pkgutil.iter_modules(package.__path__):
        match = _NAME.match(info.name)
        if not match:
            continue
        module = importlib.import_module(f"models.migrations.{info.name}")
        found.append(Migration(int(match.group(1)), match.group(2), module))
    found.sort(key=lambda m: m.version)
    versions = [m.version for m in found]
    if versions != list(range(1, len(found) + 1)):
        raise RuntimeError(f"migration versions must be 1..N without gaps, got {versions}")
    return found


def connect(database_url: str) -> peewee.Database:
    """Bind the shared peewee database to a URL (psycopg2, synchronous)."""
    url = urlparse(database_url)
    database.init(
        url.path.lstrip("/"),
        host=url.hostname,
        port=url.port or 5432,
        user=url.username,
        password=url.password,
    )
    database.connect(reuse_if_open=True)
    return database


def applied_versions(db: peewee.Database) -> set[int]:
    db.execute_sql(
        "CREATE TABLE IF NOT EXISTS schema_migrations ("
        " version integer PRIMARY KEY, name text NOT NULL,"
        " applied_at timestamptz NOT NULL DEFAULT now())"
    )
    return {row[0] for row in db.execute_sql("SELECT version FROM schema_migrations")}


def migrate(database_url: str) -> list[str]:
    """Apply every pending migration; returns the names applied (empty when already at head)."""
    db = connect(database_url)
    applied: list[str] = []
    try:
        db.execute_sql("SELECT pg_advisory_lock(%s)", (MIGRATION_LOCK_KEY,))
        try:
            done = applied_versions(db)
            for migration in discover():
                if migration.version in done:
                    continue
                with db.atomic():
                    migration.module.up(db)
                    db.execute_sql(
                        "INSERT INTO schema_migrations (version, name) VALUES (%s, %s)",
                        (migration.version, migration.name),
                    )
                applied.append(f"{migration.version:04d}_{migration.name}")
        finally:
            db.execute_sql("SELECT pg_advisory_unlock(%s)", (MIGRATION_LOCK_KEY,))
    finally:
        db.close()
    return applied


def create_tables(db: peewee.Database, models: Sequence[type[peewee.Model]]) -> None:
    """Create tables (with the models' indexes) if they do not exist yet."""
    db.create_tables(models, safe=True)


def run_sql(db: peewee.Database, *statements: str) -> None:
    for statement in statements:
        db.execute_sql(statement)
