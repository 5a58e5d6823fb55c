"""Storage that refuses writes, as SQLite, PostgreSQL and the photo folder report it, is named."""

from __future__ import annotations

import errno

import pytest
import sqlalchemy as sa

from bot.errors import storage_problem


def _write_error(engine: sa.engine.Engine, prepare: str) -> BaseException:
    with engine.connect() as connection:
        connection.exec_driver_sql("CREATE TABLE IF NOT EXISTS note (x TEXT)")
        connection.commit()
        connection.exec_driver_sql(prepare)
        with pytest.raises(sa.exc.DBAPIError) as raised:
            connection.exec_driver_sql("INSERT INTO note VALUES ('" + "x" * 100_000 + "')")
        connection.rollback()
    return raised.value


def test_a_full_database_is_named(database_url) -> None:
    if database_url.startswith("postgresql"):
        import psycopg

        # A PostgreSQL server out of disk cannot be staged here; its error is, as psycopg raises it.
        error = sa.exc.OperationalError("INSERT ...", {}, psycopg.errors.DiskFull("could not extend file"))
    else:
        engine = sa.create_engine(database_url)
        error = _write_error(engine, "PRAGMA max_page_count = 2")  # a real SQLITE_FULL
        engine.dispose()
    assert storage_problem(error) == "full"


def test_a_read_only_database_is_named(database_url, tmp_path) -> None:
    if database_url.startswith("postgresql"):
        engine = sa.create_engine(database_url)
        error = _write_error(engine, "SET TRANSACTION READ ONLY")  # a real 25006
    else:
        writable = sa.create_engine(database_url)
        with writable.begin() as connection:
            connection.exec_driver_sql("CREATE TABLE note (x TEXT)")
        writable.dispose()
        path = database_url.split("///", 1)[1]
        engine = sa.create_engine(f"sqlite:///file:{path}?mode=ro&uri=true")
        error = _write_error(engine, "SELECT 1")
    engine.dispose()
    assert storage_problem(error) == "read_only"


def test_photo_folder_errors_are_named_and_others_are_not() -> None:
    assert storage_problem(OSError(errno.ENOSPC, "No space left on device")) == "full"
    assert storage_problem(OSError(errno.EROFS, "Read-only file system")) == "read_only"
    assert storage_problem(PermissionError(errno.EACCES, "Permission denied")) == "read_only"
    wrapped = RuntimeError("put failed")
    wrapped.__cause__ = OSError(errno.EDQUOT, "Disk quota exceeded")
    assert storage_problem(wrapped) == "full"
    assert storage_problem(ValueError("database or disk is full")) is None  # a user's text, not SQLite
    assert storage_problem(TimeoutError()) is None and storage_problem(None) is None
