"""Engine creation: SQLite by default (WAL, foreign keys on), any SQLAlchemy URL for scale-out."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import event, text
from sqlalchemy.engine import Engine, make_url
from sqlalchemy.pool import StaticPool
from sqlmodel import Session, create_engine

from storage import lifecycle_tables, migrations, tables  # noqa: F401  (tables register on SQLModel.metadata)


def make_engine(
    url: str,
    *,
    prepare_schema: bool = True,
    busy_timeout_s: float = 30.0,
    statement_timeout_s: float = 0.0,
    lock_timeout_s: float = 0.0,
) -> Engine:
    """Create an engine and the schema. ``sqlite://`` (no path) gives a shared in-memory database.

    A new database gets the newest schema; an older one is upgraded (SQLite) or refused with
    :class:`storage.migrations.SchemaError` (PostgreSQL: run ``dogbot db upgrade``). See
    :mod:`storage.migrations`. ``prepare_schema=False`` leaves the database as it is.

    A write that waits ``busy_timeout_s`` for another SQLite writer fails ("database is locked");
    on PostgreSQL a statement running past ``statement_timeout_s`` or waiting past ``lock_timeout_s``
    for a lock is cancelled (0: no limit). A failure the caller can report beats a request that hangs.
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
            connect_args={"check_same_thread": False, "timeout": busy_timeout_s},
            poolclass=StaticPool if in_memory else None,
        )
        event.listen(engine, "connect", _sqlite_pragmas)
    else:
        limits = [
            f"-c {name}={int(seconds * 1000)}"
            for name, seconds in (
                ("statement_timeout", statement_timeout_s),
                ("lock_timeout", lock_timeout_s),
            )
            if seconds > 0
        ]
        # Added to any options the URL itself carries (a search_path, say), not in their place.
        given = make_url(url).query.get("options")
        options = " ".join([*([given] if isinstance(given, str) else list(given or ())), *limits])
        connect_args = {"options": options} if limits else {}
        engine = create_engine(url, pool_pre_ping=True, connect_args=connect_args)
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


def ping(engine: Engine) -> None:
    """One round trip to the database (readiness checks); raises what the driver raises."""
    with engine.connect() as connection:
        connection.execute(text("SELECT 1"))
