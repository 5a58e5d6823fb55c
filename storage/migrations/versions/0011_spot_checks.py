"""spot checks: which answers accepted without asking were picked at random for staff to check

``prediction.spot_check`` marks them (dogbot/core/asking.py): their answers are the unbiased sample
the catalog's accuracy is estimated from (dogbot/core/accuracy.py).

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
    if "spot_check" not in columns:
        with op.batch_alter_table("prediction") as batch:
            batch.add_column(sa.Column("spot_check", sa.Boolean(), nullable=False, server_default=sa.false()))


def downgrade() -> None:
    with op.batch_alter_table("prediction") as batch:
        batch.drop_column("spot_check")
