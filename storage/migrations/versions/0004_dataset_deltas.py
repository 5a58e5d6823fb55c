"""dataset versions store what changed against their parent, not a copy of the catalog

Each fold wrote one item per labelled photo; now a version writes only the photos added,
relabelled or removed since its parent (``datasetversion.parent``), removals marked by
``datasetitem.removed``; ``datasetversion.pruned`` marks a version retired by ``dogbot prune``.
Every version made before this one lists every photo itself: it gets no
parent and reads exactly as before. ``n_changed`` of those is their item count.

Revision ID: 0004_dataset_deltas
Revises: 0003_one_prediction_per_model
Create Date: 2026-11-27 14:10:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004_dataset_deltas"
down_revision: str | Sequence[str] | None = "0003_one_prediction_per_model"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # A database adopted from before migrations got its lifecycle tables from the current models,
    # these columns included (SQLite has no ADD COLUMN IF NOT EXISTS).
    have = {
        table: {column["name"] for column in sa.inspect(op.get_bind()).get_columns(table)}
        for table in ("datasetversion", "datasetitem")
    }
    if "parent" not in have["datasetversion"]:
        op.add_column("datasetversion", sa.Column("parent", sa.Integer(), nullable=True))
    if "n_changed" not in have["datasetversion"]:
        op.add_column(
            "datasetversion", sa.Column("n_changed", sa.Integer(), nullable=False, server_default="0")
        )
        op.execute("UPDATE datasetversion SET n_changed = n_items")
    if "pruned" not in have["datasetversion"]:
        op.add_column(
            "datasetversion", sa.Column("pruned", sa.Boolean(), nullable=False, server_default=sa.false())
        )
    if "removed" not in have["datasetitem"]:
        op.add_column(
            "datasetitem", sa.Column("removed", sa.Boolean(), nullable=False, server_default=sa.false())
        )


def downgrade() -> None:
    # Only a history without deltas reads the same under the old code: put each version back together
    # before downgrading (not done here), or restore the backup taken before the upgrade.
    op.drop_column("datasetitem", "removed")
    op.drop_column("datasetversion", "pruned")
    op.drop_column("datasetversion", "n_changed")
    op.drop_column("datasetversion", "parent")
