"""Engine creation: SQLite by default (WAL, foreign keys on), any SQLAlchemy URL for scale-out."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import event
from sqlalchemy.engine import Engine
from sqlalchemy.pool import StaticPool
from sqlmodel import Session, create_engine

from storage import lifecycle_tables, migrations, tables  # noqa: F401  (tables register on SQLModel.metadata)


def make_engine(url: str, *, prepare_schema: bool = True) -> Engine:
    """Create an engine and the schema. ``sqlite://`` (no path) gives a shared in-memory database.

    A new database gets the newest schema; an older one is upgraded (SQLite) or refused with
    :class:`storage.migrations.SchemaError` (PostgreSQL: run ``dogbot db upgrade``). See
    :mod:`storage.migrations`. ``prepare_schema=False`` leaves the database as it is.
    """
    if url.startswith("postgresql://"):
        url = "postgresql+psycopg://" + url.removeprefix("postgresql://")
    if url.startswith("sqlite"):
        in_memory = url in ("sqlite://", "sqlite:///:memory:")
        if not in_memory:
            Path(url.split("///", 1)[1]).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(
            url,
            # The bot's handlers run database work in worker threads.
            connect_args={"check_same_thread": False, "timeout": 30},
            poolclass=StaticPool if in_memory else None,
        )
        event.listen(engine, "connect", _sqlite_pragmas)
    else:
        engine = create_engine(url, pool_pre_ping=True)
    if prepare_schema:
        try:
            migrations.prepare(engine)
        except BaseException:
            engine.dispose()  # a refused start must not leave connections open
            raise
    return engine


def _sqlite_pragmas(dbapi_connection, _record) -> None:
    # WAL lets the bot read while the worker writes; NORMAL sync is durable in WAL mode
    # against process crashes (the case we test); foreign keys are off by default in SQLite.
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.close()


def session(engine: Engine) -> Session:
    # Keep loaded attributes usable after commit: services hand rows to handlers.
    return Session(engine, expire_on_commit=False)
