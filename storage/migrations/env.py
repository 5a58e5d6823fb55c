"""Alembic's entry point: runs migrations on the connection :mod:`storage.migrations` hands it."""

from __future__ import annotations

from alembic import context
from sqlalchemy.types import TypeDecorator
from sqlmodel import SQLModel

from storage import db  # noqa: F401  (registers every table on SQLModel.metadata)


def render_item(type_: str, obj: object, autogen_context) -> str | bool:
    # Migrations name plain SQLAlchemy types (sa.String, sa.DateTime(timezone=True)), not SQLModel's
    # wrappers (AutoString, UTCDateTime), so they never depend on SQLModel's internals.
    if type_ == "type" and isinstance(obj, TypeDecorator) and type(obj).__module__.startswith("sqlmodel"):
        return f"sa.{obj.impl_instance!r}"
    return False


connection = context.config.attributes["connection"]
context.configure(
    connection=connection,
    target_metadata=SQLModel.metadata,
    compare_type=True,
    render_item=render_item,
    # SQLite cannot ALTER most things; batch mode rebuilds the table instead.
    render_as_batch=connection.dialect.name == "sqlite",
)
with context.begin_transaction():
    context.run_migrations()
