"""dogs: the shelter's unit is an animal, not a photo; every existing photo becomes its own dog

A ``dog`` row per animal (shelter code, name, sex, age group, intake date, notes); ``photo.dog_id``
points at it; a mixed-breed label may name the cross's primary and secondary breed. Every photo
already stored becomes its own dog, numbered per year of its arrival in photo order
(``D-2026-0001``, ...: the default code format; a deployment's own prefix applies to new dogs),
so every label, prediction and model stays as it was.

Revision ID: 0006_dogs
Revises: 0003_one_prediction_per_model
Create Date: 2026-11-27 14:20:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006_dogs"
down_revision: str | Sequence[str] | None = "0005_drift_incidents"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

BATCH = 1000


def upgrade() -> None:
    # A database adopted from before migrations got its first-release tables from the current models
    # (storage.migrations.prepare): the dog table, photo.dog_id and the label columns may be there.
    inspector = sa.inspect(op.get_bind())
    if not inspector.has_table("dog"):
        op.create_table(
            "dog",
            sa.Column("id", sa.Integer(), nullable=False),
            sa.Column("code", sa.String(length=32), nullable=False),
            sa.Column("year", sa.Integer(), nullable=False),
            sa.Column("serial", sa.Integer(), nullable=False),
            sa.Column("name", sa.String(length=64), nullable=True),
            sa.Column("sex", sa.String(length=8), nullable=False),
            sa.Column("age_group", sa.String(length=8), nullable=False),
            sa.Column("intake_at", sa.DateTime(timezone=True), nullable=False),
            sa.Column("notes", sa.String(length=2000), nullable=False),
            sa.Column("source", sa.String(length=16), nullable=False),
            sa.Column("sender_id", sa.BigInteger(), nullable=True),
            sa.Column("chat_id", sa.BigInteger(), nullable=True),
            sa.Column("merged_into", sa.Integer(), nullable=True),
            sa.PrimaryKeyConstraint("id"),
            sa.UniqueConstraint("year", "serial"),
        )
        op.create_index(op.f("ix_dog_code"), "dog", ["code"], unique=True)
        op.create_index(op.f("ix_dog_intake_at"), "dog", ["intake_at"], unique=False)
    if "dog_id" not in {column["name"] for column in inspector.get_columns("photo")}:
        # ADD COLUMN ... REFERENCES is plain SQL on SQLite: no rebuild of the table every prediction
        # and label points at.
        if op.get_bind().dialect.name == "sqlite":
            op.execute("ALTER TABLE photo ADD COLUMN dog_id INTEGER REFERENCES dog (id)")
        else:
            op.add_column("photo", sa.Column("dog_id", sa.Integer(), nullable=True))
            op.create_foreign_key("photo_dog_id_fkey", "photo", "dog", ["dog_id"], ["id"])
    op.create_index(op.f("ix_photo_dog_id"), "photo", ["dog_id"], unique=False, if_not_exists=True)
    label_columns = {column["name"] for column in inspector.get_columns("label")}
    for name in ("primary_breed", "secondary_breed"):
        if name not in label_columns:
            op.add_column("label", sa.Column(name, sa.String(length=64), nullable=True))
    _one_dog_per_photo(op.get_bind())


def _one_dog_per_photo(connection) -> None:
    """A dog for every photo that has none, numbered per year after the dogs already there."""
    photo = sa.table(
        "photo", *(sa.column(c) for c in ("id", "received_at", "source", "sender_id", "chat_id", "dog_id"))
    )
    columns = (
        "id",
        "code",
        "year",
        "serial",
        "sex",
        "age_group",
        "intake_at",
        "notes",
        "source",
        "sender_id",
    )
    dog = sa.table("dog", *(sa.column(c) for c in (*columns, "chat_id")))
    rows = connection.execute(
        sa.select(photo.c.id, photo.c.received_at, photo.c.source, photo.c.sender_id, photo.c.chat_id)
        .where(photo.c.dog_id.is_(None))
        .order_by(photo.c.id)
    ).all()
    if not rows:
        return
    serials: dict[int, int] = dict(
        connection.execute(sa.select(dog.c.year, sa.func.max(dog.c.serial)).group_by(dog.c.year)).all()
    )
    next_id = (connection.execute(sa.select(sa.func.max(dog.c.id))).scalar() or 0) + 1
    dogs, links = [], []
    for dog_id, (photo_id, received_at, source, sender_id, chat_id) in enumerate(rows, start=next_id):
        year = _year(received_at)
        serials[year] = serials.get(year, 0) + 1
        dogs.append(
            {
                "id": dog_id,
                "code": f"D-{year}-{serials[year]:04d}",
                "year": year,
                "serial": serials[year],
                "sex": "unknown",
                "age_group": "unknown",
                "intake_at": received_at,
                "notes": "",
                "source": source,
                "sender_id": sender_id,
                "chat_id": chat_id,
            }
        )
        links.append({"photo_id": photo_id, "new_dog": dog_id})
    for start in range(0, len(dogs), BATCH):
        connection.execute(dog.insert(), dogs[start : start + BATCH])
    update = (
        photo.update().where(photo.c.id == sa.bindparam("photo_id")).values(dog_id=sa.bindparam("new_dog"))
    )
    for start in range(0, len(links), BATCH):
        connection.execute(update, links[start : start + BATCH])
    if connection.dialect.name == "postgresql":
        connection.exec_driver_sql(
            "SELECT setval(pg_get_serial_sequence('dog', 'id'), (SELECT MAX(id) FROM dog))"
        )


def _year(received_at) -> int:
    # SQLite hands the stored text back through a plain table() select; PostgreSQL a datetime.
    return received_at.year if hasattr(received_at, "year") else int(str(received_at)[:4])


def downgrade() -> None:
    op.drop_index(op.f("ix_photo_dog_id"), table_name="photo")
    with op.batch_alter_table("photo") as batch:
        batch.drop_column("dog_id")
    with op.batch_alter_table("label") as batch:
        batch.drop_column("secondary_breed")
        batch.drop_column("primary_breed")
    op.drop_index(op.f("ix_dog_intake_at"), table_name="dog")
    op.drop_index(op.f("ix_dog_code"), table_name="dog")
    op.drop_table("dog")
