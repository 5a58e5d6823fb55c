"""drift incidents: one stored row per shift in the photos, as admins are told of it

``driftincident`` keeps what the one message to admins said, the alarms folded into it, how it
ended (a promotion, or an admin's "Expected") and, for "Expected", the photos that became the drift
reference. A new table: nothing existing changes.

Revision ID: 0005_drift_incidents
Revises: 0003_one_prediction_per_model
Create Date: 2026-11-27 14:10:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005_drift_incidents"
down_revision: str | Sequence[str] | None = "0004_dataset_deltas"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "driftincident",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("opened_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("report_id", sa.Integer(), nullable=False),
        sa.Column("last_report_id", sa.Integer(), nullable=False),
        sa.Column("alarms", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("model_version", sa.String(length=64), nullable=False),
        sa.Column("facts", sa.JSON(), nullable=False),
        sa.Column("closed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("closed_how", sa.String(length=16), nullable=True),
        sa.Column("closed_by", sa.String(length=64), nullable=True),
        sa.Column("new_normal", sa.JSON(), nullable=True),
        sa.ForeignKeyConstraint(["report_id"], ["driftreport.id"]),
        sa.ForeignKeyConstraint(["last_report_id"], ["driftreport.id"]),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_driftincident_opened_at", "driftincident", ["opened_at"])
    op.create_index("ix_driftincident_closed_at", "driftincident", ["closed_at"])


def downgrade() -> None:
    op.drop_index("ix_driftincident_closed_at", table_name="driftincident")
    op.drop_index("ix_driftincident_opened_at", table_name="driftincident")
    op.drop_table("driftincident")
