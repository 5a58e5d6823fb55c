"""Consistent database snapshots as a SQLite file, and loading one into any database we support.

A snapshot is always a SQLite file with our schema, whatever the source: SQLite is copied page by page
with the online backup API while the bot keeps writing; PostgreSQL is read table by table inside one
``REPEATABLE READ`` transaction, which sees a single moment. The same file loads into SQLite or
PostgreSQL, so a backup is also how a shelter moves from one process on SQLite to PostgreSQL.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable
from pathlib import Path

from alembic.runtime.migration import MigrationContext
from sqlalchemy import Table, create_engine, delete, func, select, text
from sqlalchemy.engine import Connection, Engine
from sqlmodel import SQLModel

from storage import db, migrations  # noqa: F401  (db registers every table on SQLModel.metadata)

BATCH = 1000  # rows per round trip; a prediction row carries a 5 KB embedding
# A model artifact row carries a whole trained head (about 1 MB): a few at a time.
BATCH_OF = {"modelartifact": 8}


def tables() -> list[Table]:
    """Every table of the schema, parents before children."""
    return list(SQLModel.metadata.sorted_tables)


def write_snapshot(engine: Engine, target: Path) -> dict[str, int]:
    """Write a consistent copy of the database at ``engine`` to the SQLite file ``target``.

    Returns the number of rows of each table in the copy.
    """
    if engine.dialect.name == "sqlite":
        _sqlite_backup(engine, target)
    else:
        _copy_to_sqlite(engine, target)
    snapshot = open_snapshot(target)
    try:
        with snapshot.connect() as connection:
            return row_counts(connection)
    finally:
        snapshot.dispose()


def open_snapshot(path: Path) -> Engine:
    """An engine on a snapshot file (no WAL, no pragmas: the file is read once and thrown away)."""
    return create_engine(f"sqlite:///{path}")


def row_counts(connection: Connection) -> dict[str, int]:
    return {table.name: connection.scalar(select(func.count()).select_from(table)) for table in tables()}


def is_empty(engine: Engine) -> bool:
    with engine.connect() as connection:
        return not any(connection.execute(select(table).limit(1)).first() for table in tables())


def load_snapshot(snapshot: Engine, engine: Engine, *, replace: bool = False) -> dict[str, int]:
    """Copy every row of ``snapshot`` into ``engine`` in one transaction; return the rows per table.

    With ``replace`` the target's rows are deleted first, in the same transaction, so a load that fails
    halfway leaves the old data as it was.
    """
    with snapshot.connect() as source, engine.begin() as target:
        if replace:
            for table in reversed(tables()):
                target.execute(delete(table))
        counts = _copy_rows(source, target, tables())
        if target.dialect.name == "postgresql":
            _advance_sequences(target, tables())
    return counts


def _sqlite_backup(engine: Engine, target: Path) -> None:
    raw = engine.raw_connection()
    try:
        destination = sqlite3.connect(target)
        try:
            # One step (pages=-1) copies the whole database under one read lock: a single moment,
            # while writers carry on in WAL mode.
            raw.driver_connection.backup(destination)
            # The copy inherits WAL mode; a snapshot must be one self-contained file.
            destination.execute("PRAGMA journal_mode=DELETE")
        finally:
            destination.close()
    finally:
        raw.close()


def _copy_to_sqlite(engine: Engine, target: Path) -> None:
    snapshot = open_snapshot(target)
    try:
        SQLModel.metadata.create_all(snapshot)
        with engine.connect() as source:
            source = source.execution_options(isolation_level="REPEATABLE READ")
            with source.begin(), snapshot.begin() as destination:
                if source.dialect.name == "postgresql":
                    source.execute(text("SET TRANSACTION READ ONLY"))
                revision = MigrationContext.configure(source).get_current_revision()
                _copy_rows(source, destination, tables())
                if revision is not None:  # restore reads it to migrate an older snapshot first
                    migrations.stamp(destination, revision)
    finally:
        snapshot.dispose()


def _copy_rows(source: Connection, target: Connection, ordered: Iterable[Table]) -> dict[str, int]:
    counts = {}
    for table in ordered:
        counts[table.name] = 0
        statement = select(table).order_by(*table.primary_key.columns)
        result = source.execution_options(yield_per=BATCH_OF.get(table.name, BATCH)).execute(statement)
        for batch in result.partitions():
            target.execute(table.insert(), [_without_nul(row._mapping) for row in batch])
            counts[table.name] += len(batch)
    return counts


def _without_nul(row) -> dict:
    """A row with NUL characters taken out of its text: PostgreSQL refuses them in text columns,
    and a catalog from before names were cleaned at the edge (SQLite stores anything) may hold one."""
    return {key: value.replace("\x00", "") if isinstance(value, str) else value for key, value in row.items()}


def _advance_sequences(connection: Connection, ordered: Iterable[Table]) -> None:
    """Rows came in with their ids; move each id sequence past them so new rows do not collide."""
    for table in ordered:
        for column in table.primary_key.columns:
            # NULL for a key without a sequence (a breed's text key).
            sequence = connection.execute(
                text("SELECT pg_get_serial_sequence(:table, :column)"),
                {"table": f'"{table.name}"', "column": column.name},
            ).scalar()
            if sequence is None:
                continue
            highest = f'SELECT MAX("{column.name}") FROM "{table.name}"'
            connection.execute(
                text(f"SELECT setval(:sequence, COALESCE(({highest}), 0) + 1, false)"), {"sequence": sequence}
            )
