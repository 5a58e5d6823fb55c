"""press order: the update id of the last press applied per person and dog, across bot replicas

Telegram's update ids increase per bot, so they order one person's presses even when two bot
replicas handle them; ``pressorder`` keeps the newest applied per (person, dog or photo), and an
older press is refused instead of overwriting a newer answer.

Revision ID: 0013_press_order
Revises: 0012_accuracy_notice
Create Date: 2026-12-07 00:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0013_press_order"
down_revision: str | Sequence[str] | None = "0012_accuracy_notice"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # A database adopted from before migrations got its tables from the current models.
    if not sa.inspect(op.get_bind()).has_table("pressorder"):
        op.create_table(
            "pressorder",
            sa.Column("user_id", sa.BigInteger(), autoincrement=False, nullable=False),
            sa.Column("subject", sa.String(length=40), nullable=False),
            sa.Column("update_id", sa.BigInteger(), nullable=False),
            sa.Column("at", sa.DateTime(timezone=True), nullable=False),
            sa.PrimaryKeyConstraint("user_id", "subject"),
        )


def downgrade() -> None:
    op.drop_table("pressorder")
