"""shared models and rates: model files and per-user photo counters in the database

``modelartifact`` holds the files of every trained head, so bot replicas on other machines load a new
champion without a shared model folder (``dogbot db upgrade`` and the worker copy in the files of
versions trained before this revision). ``ratewindow`` counts photos per user when replicas share one
photo limit. Both are new tables: nothing existing changes.

Revision ID: 0002_shared_models_and_rates
Revises: 0001_first_release
Create Date: 2026-11-26 23:36:38.366349
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002_shared_models_and_rates"
down_revision: str | Sequence[str] | None = "0001_first_release"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "modelartifact",
        sa.Column("version", sa.String(length=64), nullable=False),
        sa.Column("name", sa.String(length=255), nullable=False),
        sa.Column("data", sa.LargeBinary(), nullable=False),
        sa.PrimaryKeyConstraint("version", "name"),
    )
    op.create_table(
        "ratewindow",
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("user_id", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("window_start", sa.BigInteger(), nullable=False),
        sa.Column("events", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("kind", "user_id"),
    )


def downgrade() -> None:
    op.drop_table("ratewindow")
    op.drop_table("modelartifact")
