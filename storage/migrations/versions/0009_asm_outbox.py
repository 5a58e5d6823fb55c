"""asm outbox: every send of a dog to Animal Shelter Manager, and the names people go by

``asmsend`` is the outbox to the shelter's ASM (one row per send, with its state and ASM's answer);
``personname`` keeps the Telegram name of each staff member and admin, so records name people.
Both are new: nothing existing changes.

Revision ID: 0009_asm_outbox
Revises: 0008_api_tokens
Create Date: 2026-12-05 23:50:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0009_asm_outbox"
down_revision: str | Sequence[str] | None = "0008_api_tokens"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # A database adopted from before migrations got its tables from the current models
    # (storage.migrations.prepare): the new tables may be there already.
    inspector = sa.inspect(op.get_bind())
    if not inspector.has_table("asmsend"):
        op.create_table(
            "asmsend",
            sa.Column("id", sa.Integer(), nullable=False),
            sa.Column("code", sa.String(length=32), nullable=False),
            sa.Column("dog_id", sa.Integer(), nullable=False),
            sa.Column("kind", sa.String(length=8), nullable=False),
            sa.Column("row", sa.JSON(), nullable=False),
            sa.Column("state", sa.String(length=12), nullable=False),
            sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
            sa.Column("attempts", sa.Integer(), nullable=False),
            sa.Column("next_try_at", sa.DateTime(timezone=True), nullable=True),
            sa.Column("sending_since", sa.DateTime(timezone=True), nullable=True),
            sa.Column("sent_at", sa.DateTime(timezone=True), nullable=True),
            sa.Column("http_status", sa.Integer(), nullable=True),
            sa.Column("answer", sa.String(length=2000), nullable=False),
            sa.PrimaryKeyConstraint("id"),
        )
        op.create_index("ix_asmsend_code_id", "asmsend", ["code", "id"])
        op.create_index(op.f("ix_asmsend_dog_id"), "asmsend", ["dog_id"])
        op.create_index(op.f("ix_asmsend_state"), "asmsend", ["state"])
    if not inspector.has_table("personname"):
        op.create_table(
            "personname",
            sa.Column("user_id", sa.BigInteger(), autoincrement=False, nullable=False),
            sa.Column("name", sa.String(length=128), nullable=False),
            sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
            sa.PrimaryKeyConstraint("user_id"),
        )


def downgrade() -> None:
    op.drop_table("personname")
    op.drop_index(op.f("ix_asmsend_state"), table_name="asmsend")
    op.drop_index(op.f("ix_asmsend_dog_id"), table_name="asmsend")
    op.drop_index("ix_asmsend_code_id", table_name="asmsend")
    op.drop_table("asmsend")
