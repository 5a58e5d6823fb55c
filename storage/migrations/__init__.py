"""Schema migrations (Alembic), configured in code: no ``alembic.ini`` is needed to run them.

What happens when a process opens the database (:func:`prepare`, called by ``make_engine``):

* an empty database gets every table and is stamped at the newest revision;
* a database made before migrations existed (our tables, no ``alembic_version``) gets any missing
  tables, is stamped at the first release, and is then treated like any older database;
* an older database is upgraded on the spot on SQLite, after a copy of the file is saved beside it
  (one process owns the file); on PostgreSQL it is refused with a message to run
  ``dogbot db upgrade`` once, so that several replicas never race each other to migrate;
* a revision this code does not know (written by a newer dogbot) is refused.

New migration after changing a table: ``dogbot db revision "what changed"``, then read and fix the
generated file; ``tests/integration/test_migrations.py`` fails while the tables and the migrations
disagree.
"""

from __future__ import annotations

import logging
import sqlite3
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING

from sqlalchemy import inspect, text
from sqlalchemy.engine import Connection, Engine
from sqlmodel import SQLModel

from storage import lifecycle_tables, tables  # noqa: F401  (tables register on SQLModel.metadata)
from storage.schema_revision import newest_revision

# Alembic is imported only where a schema is created, checked against an unknown revision or
# migrated: importing it costs about as much as the rest of a `dogbot predict` start, and a start
# that finds the schema current (every start but the first after an upgrade) needs none of it.
if TYPE_CHECKING:
    from alembic.config import Config
    from alembic.script import ScriptDirectory

log = logging.getLogger(__name__)

HERE = Path(__file__).resolve().parent
FIRST_RELEASE = "0001_first_release"
# The tables 0001_first_release creates (a released migration never changes, so neither does this).
# Valid while no later migration alters one of them; one that does must adopt such databases itself
# (0003 creates its index only where it is missing).
_FIRST_RELEASE_TABLES = (
    "aliasmove", "custombreed", "datasetversion", "driftreport", "joblock", "jobrun", "member", "photo",
    "goldenitem", "modelversion", "prediction", "datasetitem", "label",
)  # fmt: skip
# Key of the PostgreSQL advisory lock held while the schema is created or migrated.
_ADVISORY_LOCK = 0x646F67626F74  # "dogbot"


class SchemaError(RuntimeError):
    """The database's schema does not fit this version of dogbot; the message says what to do."""


def config(connection: Connection | None = None, *, location: Path = HERE) -> Config:
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(location))
    cfg.set_main_option("path_separator", "os")
    cfg.set_main_option("file_template", "%%(rev)s")  # ids are already "0002_what_changed"
    cfg.attributes["connection"] = connection
    return cfg


@cache
def _scripts(location: Path) -> ScriptDirectory:
    from alembic.script import ScriptDirectory

    return ScriptDirectory.from_config(config(location=location))


def head(*, location: Path = HERE) -> str:
    return _scripts(location).get_current_head()


def current(engine: Engine) -> str | None:
    with engine.connect() as connection:
        return _stamped(connection)


def _stamped(connection: Connection) -> str | None:
    """The revision recorded in the database (None: not stamped), read without Alembic."""
    if not inspect(connection).has_table("alembic_version"):
        return None
    return connection.execute(text("SELECT version_num FROM alembic_version")).scalar()


def stamp(connection: Connection, revision: str, *, location: Path = HERE) -> None:
    """Record ``revision`` as the schema of the database behind ``connection`` (no DDL run)."""
    from alembic.runtime.migration import MigrationContext

    MigrationContext.configure(connection).stamp(_scripts(location), revision)


def prepare(engine: Engine, *, upgrade: bool | None = None, location: Path = HERE) -> str:
    """Bring a new database to the newest schema, or check (and on SQLite upgrade) an existing one.

    ``upgrade``: migrate an older database; default only on SQLite. Returns the revision now in force.
    """
    if not upgrade:
        with engine.connect() as connection:
            found = _stamped(connection)
        if found is not None and found == newest_revision(location):
            return found  # the usual start: nothing to create or migrate, no Alembic to import
    scripts = _scripts(location)
    if upgrade is None:
        upgrade = engine.dialect.name == "sqlite"
    with engine.connect() as connection:
        if connection.dialect.name != "sqlite":
            return _prepare(connection, scripts, upgrade, location)
        # SQLite migrations rebuild tables (copy, drop, rename): foreign keys must be off meanwhile,
        # which SQLite only allows outside a transaction; they are checked once it is done.
        connection.exec_driver_sql("PRAGMA foreign_keys=OFF")
        connection.commit()
        try:
            return _prepare(connection, scripts, upgrade, location)
        finally:
            connection.rollback()
            connection.exec_driver_sql("PRAGMA foreign_keys=ON")
            connection.commit()


def _prepare(connection: Connection, scripts: ScriptDirectory, upgrade: bool, location: Path) -> str:
    from alembic import command
    from alembic.runtime.migration import MigrationContext

    newest = scripts.get_current_head()
    with connection.begin():
        if connection.dialect.name == "postgresql":
            # Replicas starting together: one creates or migrates, the others wait and then find it done.
            connection.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _ADVISORY_LOCK})
        context = MigrationContext.configure(connection)
        revision = context.get_current_revision()
        saved = False
        if revision is None:
            ours = set(SQLModel.metadata.tables) & set(inspect(connection).get_table_names())
            if ours and upgrade and connection.dialect.name == "sqlite":
                # Copied before anything is written: SQLite cannot back up a database that the
                # copying connection has uncommitted writes in (the backup would wait forever).
                _save_copy(connection, "migrations")
                saved = True
            # A new database is created straight from the tables (faster and the same, as a test
            # checks); one made before migrations existed gets the first release's tables, is stamped
            # there, and the migrations since then do the rest.
            tables = SQLModel.metadata.tables
            # With the tables they point at now (photo.dog_id: dog), which later migrations then find made.
            first = [tables[name] for name in _FIRST_RELEASE_TABLES]
            first += [
                fk.column.table
                for table in first
                for fk in table.foreign_keys
                if fk.column.table not in first
            ]
            SQLModel.metadata.create_all(connection, tables=list(dict.fromkeys(first)) if ours else None)
            revision = FIRST_RELEASE if ours else newest
            context.stamp(scripts, revision)
            if not ours:
                log.info("new database created at schema revision %s", revision)
                return revision
        if revision == newest:
            return revision
        try:
            scripts.get_revision(revision)
        except Exception as error:  # alembic raises several kinds for an unknown id
            raise SchemaError(
                f"the database is at schema revision {revision}, which this dogbot does not know: "
                "it was written by a newer version. Run that version, or restore a backup."
            ) from error
        if not upgrade:
            raise SchemaError(
                f"the database is at schema revision {revision}; this dogbot needs {newest}. "
                "Stop every bot and worker, back up, then run `dogbot db upgrade` once."
            )
        if connection.dialect.name == "sqlite" and not saved:
            _save_copy(connection, revision)
        log.warning("upgrading the database schema from %s to %s", revision, newest)
        command.upgrade(config(connection, location=location), "head")
        if connection.dialect.name == "sqlite":
            problems = connection.exec_driver_sql("PRAGMA foreign_key_check").fetchall()
            if problems:
                raise SchemaError(f"the migration left rows that point at nothing: {problems[:5]}")
        return newest


def upgrade(engine: Engine, *, location: Path = HERE) -> tuple[str | None, str]:
    """``dogbot db upgrade``: migrate to the newest revision; returns (before, after)."""
    before = current(engine)
    return before, prepare(engine, upgrade=True, location=location)


def revision(message: str, *, location: Path = HERE) -> Path:
    """Write a migration for what the tables have and the migrations do not (``dogbot db revision``).

    The difference is taken against a scratch SQLite database built by the migrations alone.
    """
    import tempfile

    from alembic import command
    from sqlalchemy import create_engine

    slug = "_".join("".join(c if c.isalnum() else " " for c in message.lower()).split())[:40]
    number = len(list(_scripts(location).walk_revisions())) + 1
    with tempfile.TemporaryDirectory() as work:
        engine = create_engine(f"sqlite:///{Path(work) / 'scratch.db'}")
        try:
            with engine.begin() as connection:
                cfg = config(connection, location=location)
                command.upgrade(cfg, "head")
                script = command.revision(
                    cfg, message=message, autogenerate=True, rev_id=f"{number:04d}_{slug}"
                )
        finally:
            engine.dispose()
    _scripts.cache_clear()
    return Path(script.path)


def _save_copy(connection: Connection, revision: str) -> None:
    database = connection.engine.url.database
    if not database or database == ":memory:":
        return
    target = Path(f"{database}.before-{revision}")
    copy = sqlite3.connect(target)
    try:
        connection.connection.driver_connection.backup(copy)
        copy.execute("PRAGMA journal_mode=DELETE")
    finally:
        copy.close()
    log.warning("saved a copy of the database as %s before migrating it", target)
