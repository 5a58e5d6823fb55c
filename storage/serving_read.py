"""What a start that only answers photos needs from a SQLite catalog, read with the standard library.

`dogbot predict` needs three facts: which model is champion, its head file and breeds, and the
names of the breeds admins added. Importing SQLAlchemy and SQLModel to ask for them costs about half
a second, more than the rest of the command's start together (bench/README.md, "Command line").
This reads them read-only with ``sqlite3``, and only from a database at the schema revision this
code writes; anything else (no file yet, an older or newer schema, a missing row) answers None, and
the caller takes the full path through ``storage.repository``, which creates or upgrades the schema
and registers the base model. The queries mirror ``lifecycle_repository.alias_target`` and
``model_version`` and ``repository.custom_breeds``; a test checks both paths agree.
"""

from __future__ import annotations

import json
import sqlite3
from dataclasses import dataclass
from pathlib import Path

from storage.schema_revision import newest_revision
from storage.vocabulary import CHAMPION


@dataclass(frozen=True)
class AddedBreed:
    key: str
    display_name: str
    aliases: tuple[str, ...]


@dataclass(frozen=True)
class ServingRecord:
    """The champion, its head file (None: the base model, which has none) and the added breeds."""

    champion: str
    artifact: str | None
    sha256: str | None
    breed_keys: tuple[str, ...]
    added_breeds: tuple[AddedBreed, ...]


def read_serving(database: Path) -> ServingRecord | None:
    """The champion and added breeds of the SQLite file ``database``; None when it cannot say."""
    revision = newest_revision()
    if revision is None or not database.is_file():
        return None
    try:
        connection = sqlite3.connect(f"{database.resolve().as_uri()}?mode=ro", uri=True, timeout=30)
    except sqlite3.Error:
        return None
    try:
        return _read(connection, revision)
    except (sqlite3.Error, ValueError, TypeError):  # a table or column this schema should have is not there
        return None
    finally:
        connection.close()


def _read(connection: sqlite3.Connection, revision: str) -> ServingRecord | None:
    if connection.execute("SELECT version_num FROM alembic_version").fetchone() != (revision,):
        return None
    moved = connection.execute(
        "SELECT to_version FROM aliasmove WHERE alias = ? ORDER BY id DESC LIMIT 1", (CHAMPION,)
    ).fetchone()
    if moved is None:
        return None
    row = connection.execute(
        "SELECT artifact, sha256, breed_keys FROM modelversion WHERE version = ?", moved
    ).fetchone()
    if row is None:
        return None
    artifact, sha256, breed_keys = row
    added = connection.execute("SELECT key, display_name, aliases FROM custombreed ORDER BY created_at")
    # JSON columns: SQLAlchemy's JSON type stores text, read back with json.loads as it does.
    return ServingRecord(
        champion=moved[0],
        artifact=artifact,
        sha256=sha256,
        breed_keys=tuple(json.loads(breed_keys)),
        added_breeds=tuple(
            AddedBreed(key, name, tuple(json.loads(aliases) if aliases else ()))
            for key, name, aliases in added
        ),
    )
