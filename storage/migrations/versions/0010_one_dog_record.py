"""one dog record: groups of photos, messages that show a dog, an audit of dogs; no dog without photos

``doggroup`` names photos sent together as one dog (an album, one API registration), so the dog is
made with its first stored photo; ``dogmessage`` records which dog a bot message shows, so a reply
finds its dog by identity; ``dogaudit`` keeps what happened to dogs. Dogs that no photo shows and
that were not merged into another (made for an album or a registration whose photos were all
refused or already known) are removed, each leaving its row in an audit row.

Revision ID: 0010_one_dog_record
Revises: 0009_asm_outbox
Create Date: 2026-12-06 00:00:00
"""

from collections.abc import Sequence
from datetime import UTC, datetime

import sqlalchemy as sa
from alembic import op

revision: str = "0010_one_dog_record"
down_revision: str | Sequence[str] | None = "0009_asm_outbox"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # A database adopted from before migrations got its tables from the current models.
    inspector = sa.inspect(op.get_bind())
    if not inspector.has_table("doggroup"):
        op.create_table(
            "doggroup",
            sa.Column("key", sa.String(length=128), nullable=False),
            sa.Column("dog_id", sa.Integer(), nullable=False),
            sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
            sa.PrimaryKeyConstraint("key"),
        )
        op.create_index(op.f("ix_doggroup_dog_id"), "doggroup", ["dog_id"])
    if not inspector.has_table("dogmessage"):
        op.create_table(
            "dogmessage",
            sa.Column("chat_id", sa.BigInteger(), autoincrement=False, nullable=False),
            sa.Column("message_id", sa.BigInteger(), autoincrement=False, nullable=False),
            sa.Column("dog_id", sa.Integer(), nullable=False),
            sa.Column("photo_id", sa.Integer(), nullable=True),
            sa.Column("caption", sa.Boolean(), nullable=False),
            sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
            sa.PrimaryKeyConstraint("chat_id", "message_id"),
        )
        op.create_index(op.f("ix_dogmessage_dog_id"), "dogmessage", ["dog_id"])
    if not inspector.has_table("dogaudit"):
        op.create_table(
            "dogaudit",
            sa.Column("id", sa.Integer(), nullable=False),
            sa.Column("dog_id", sa.Integer(), nullable=False),
            sa.Column("code", sa.String(length=32), nullable=False),
            sa.Column("year", sa.Integer(), nullable=True),
            sa.Column("serial", sa.Integer(), nullable=True),
            sa.Column("action", sa.String(length=16), nullable=False),
            sa.Column("detail", sa.JSON(), nullable=False),
            sa.Column("user_id", sa.BigInteger(), nullable=True),
            sa.Column("at", sa.DateTime(timezone=True), nullable=False),
            sa.PrimaryKeyConstraint("id"),
        )
        op.create_index(op.f("ix_dogaudit_code"), "dogaudit", ["code"])
        op.create_index(op.f("ix_dogaudit_dog_id"), "dogaudit", ["dog_id"])
    remove_empty_dogs(op.get_bind())


def remove_empty_dogs(connection) -> int:
    """Remove every dog no photo shows and no other dog was merged into, with an audit row each."""
    dog = sa.table(
        "dog",
        *(
            sa.column(c)
            for c in (
                "id",
                "code",
                "year",
                "serial",
                "name",
                "intake_at",
                "source",
                "sender_id",
                "merged_into",
            )
        ),
    )
    photo = sa.table("photo", sa.column("dog_id"))
    audit = sa.table(
        "dogaudit",
        sa.column("dog_id"),
        sa.column("code"),
        sa.column("year"),
        sa.column("serial"),
        sa.column("action"),
        sa.column("detail", sa.JSON()),
        sa.column("user_id"),
        sa.column("at"),
    )
    merged = sa.alias(dog, "merged")
    empty = connection.execute(
        sa.select(
            dog.c.id,
            dog.c.code,
            dog.c.year,
            dog.c.serial,
            dog.c.name,
            dog.c.intake_at,
            dog.c.source,
            dog.c.sender_id,
        )
        .where(dog.c.merged_into.is_(None))
        .where(~sa.exists().where(photo.c.dog_id == dog.c.id))
        .where(~sa.exists().where(merged.c.merged_into == dog.c.id))
    ).all()
    now = datetime.now(UTC)
    for row in empty:
        detail = {
            "name": row.name,
            "intake_at": str(row.intake_at),
            "source": row.source,
            "sender_id": row.sender_id,
            "why": "no photo (found by migration 0010)",
        }
        connection.execute(
            audit.insert().values(
                dog_id=row.id,
                code=row.code,
                year=row.year,
                serial=row.serial,
                action="removed_empty",
                detail=detail,
                user_id=None,
                at=now,
            )
        )
        connection.execute(dog.delete().where(dog.c.id == row.id))
    return len(empty)


def downgrade() -> None:
    op.drop_table("dogaudit")
    op.drop_table("dogmessage")
    op.drop_table("doggroup")
