"""Migrations: empty database → head, head → head is a no-op, and the schema matches the models."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import peewee
import psycopg2
import pytest

from models.migrate import discover, migrate


@pytest.fixture
def empty_database(stack) -> Iterator[str]:
    name = f"mig_{uuid.uuid4().hex[:12]}"
    admin = psycopg2.connect(stack.postgres.url("postgres"))
    admin.autocommit = True
    with admin.cursor() as cur:
        cur.execute(f'CREATE DATABASE "{name}"')
    try:
        yield stack.postgres.url(name)
    finally:
        with admin.cursor() as cur:
            cur.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.close()


def all_models() -> list[type[peewee.Model]]:
    """Every table model the migrations create, found through the migration modules."""
    models: dict[str, type[peewee.Model]] = {}
    for migration in discover():
        for value in vars(migration.module).values():
            items = value if isinstance(value, list) else [value]
            for item in items:
                if (
                    isinstance(item, type)
                    and issubclass(item, peewee.Model)
                    and item._meta.table_name
                ):
                    models[item._meta.table_name] = item
    return list(models.values())


def test_empty_to_head_then_noop(empty_database):
    applied = migrate(empty_database)
    assert [name.split("_", 1)[0] for name in applied] == [f"{m.version:04d}" for m in discover()]
    assert migrate(empty_database) == []


def test_schema_matches_models(empty_database):
    migrate(empty_database)
    conn = psycopg2.connect(empty_database)
    try:
        with conn.cursor() as cur:
            for model in all_models():
                cur.execute(
                    "SELECT column_name FROM information_schema.columns WHERE table_name = %s",
                    (model._meta.table_name,),
                )
                columns = {row[0] for row in cur.fetchall()}
                expected = {field.column_name for field in model._meta.sorted_fields}
                assert expected <= columns, (model._meta.table_name, expected - columns)
    finally:
        conn.close()


def test_every_foreign_key_is_indexed(empty_database):
    """Postgres does not index FK columns by itself; unindexed FKs make cascades and joins scan."""
    migrate(empty_database)
    conn = psycopg2.connect(empty_database)
    try:
        with conn.cursor() as cur:
            cur.execute(
                """
                SELECT c.conrelid::regclass::text, a.attname
                FROM pg_constraint c
                JOIN pg_attribute a ON a.attrelid = c.conrelid AND a.attnum = c.conkey[1]
                WHERE c.contype = 'f' AND NOT EXISTS (
                    SELECT 1 FROM pg_index i
                    WHERE i.indrelid = c.conrelid AND i.indkey[0] = c.conkey[1])
                """
            )
            assert cur.fetchall() == []
    finally:
        conn.close()


def test_concurrent_migrations_serialise(empty_database):
    """Two nodes starting at once: the advisory lock makes one apply and the other see head."""
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(2) as pool:
        results = list(pool.map(lambda _: migrate(empty_database), range(2)))
    assert sorted(len(r) for r in results) == [0, len(discover())]
