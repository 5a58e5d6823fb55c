"""member language: the language each person chose with /language

One row per person who chose (``languagechoice``); everyone else is spoken to in Telegram's language
for them, or the shelter's DOGBOT_LANGUAGE. A new table: nothing existing changes.

Revision ID: 0007_member_language
Revises: 0003_one_prediction_per_model
Create Date: 2026-11-27 14:20:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0007_member_language"
down_revision: str | Sequence[str] | None = "0006_dogs"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "languagechoice",
        sa.Column("user_id", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("language", sa.String(length=8), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("user_id"),
        if_not_exists=True,
    )


def downgrade() -> None:
    op.drop_table("languagechoice")
