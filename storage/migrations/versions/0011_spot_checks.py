"""spot checks: which answers accepted without asking were picked at random for staff to check

``prediction.spot_check`` marks them (dogbot/core/asking.py): their answers are the unbiased sample
the catalog's accuracy is estimated from (dogbot/core/accuracy.py). ``prediction.held_back`` marks
answers sure enough to accept but asked because of a look-alike: left out of what the rule learns.

Revision ID: 0011_spot_checks
Revises: 0010_one_dog_record
Create Date: 2026-12-06 03:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0011_spot_checks"
down_revision: str | Sequence[str] | None = "0010_one_dog_record"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # A database adopted from before migrations got its tables, this column too, from the current models.
    columns = {column["name"] for column in sa.inspect(op.get_bind()).get_columns("prediction")}
    missing = [name for name in ("spot_check", "held_back") if name not in columns]
    for name in missing:  # ADD COLUMN, not a batch copy: label's foreign key holds prediction
        op.add_column("prediction", sa.Column(name, sa.Boolean(), nullable=False, server_default=sa.false()))
    if "held_back" in missing:
        # Before this revision a breed answer was accepted from a fixed confidence (0.7 by default),
        # so one at or above it that was asked anyway was held back for a look-alike.
        prediction = sa.table(
            "prediction",
            sa.column("is_dog", sa.Boolean()),
            sa.column("auto_accepted", sa.Boolean()),
            sa.column("confidence", sa.Float()),
            sa.column("held_back", sa.Boolean()),
        )
        op.execute(
            prediction.update()
            .where(prediction.c.is_dog, ~prediction.c.auto_accepted, prediction.c.confidence >= 0.7)
            .values(held_back=True)
        )


def downgrade() -> None:
    op.drop_column("prediction", "held_back")
    op.drop_column("prediction", "spot_check")
