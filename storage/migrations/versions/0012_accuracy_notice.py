"""accuracy notice: whether admins were told the catalog fell below its target accuracy

One row (``accuracynotice``), turned strict by the one bot replica that tells admins, and back once
the rule of when to ask is back to the target (bot/lifecycle.py, dogbot/core/standing.py).

Revision ID: 0012_accuracy_notice
Revises: 0011_spot_checks
Create Date: 2026-12-06 04:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0012_accuracy_notice"
down_revision: str | Sequence[str] | None = "0011_spot_checks"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # A database adopted from before migrations got its tables, this one too, from the current models.
    if "accuracynotice" in sa.inspect(op.get_bind()).get_table_names():
        return
    op.create_table(
        "accuracynotice",
        sa.Column("name", sa.String(length=32), nullable=False),
        sa.Column("strict", sa.Boolean(), nullable=False),
        sa.Column("changed_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("name"),
    )


def downgrade() -> None:
    op.drop_table("accuracynotice")
