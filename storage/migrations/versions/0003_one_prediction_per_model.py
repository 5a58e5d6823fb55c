"""one prediction per photo and model version: a unique index on prediction (photo_id, model_version)

Two sends of the same photo racing each other could each store a prediction by the same model; the
first sender's buttons then pointed at a prediction that was no longer the photo's latest. Duplicates
already stored are merged into the newest of each pair (the one every reader already took as the
photo's latest): labels and dataset items that named an older copy name the newest one instead.

Revision ID: 0003_one_prediction_per_model
Revises: 0002_shared_models_and_rates
Create Date: 2026-11-27 11:40:00
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0003_one_prediction_per_model"
down_revision: str | Sequence[str] | None = "0002_shared_models_and_rates"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# A prediction with a newer copy by the same model for the same photo (plain SQL: SQLite and PostgreSQL).
_OLDER_COPY = (
    "EXISTS (SELECT 1 FROM prediction newer WHERE newer.photo_id = prediction.photo_id "
    "AND newer.model_version = prediction.model_version AND newer.id > prediction.id)"
)
_NEWEST_COPY = (
    "(SELECT MAX(newer.id) FROM prediction newer JOIN prediction older "
    "ON older.photo_id = newer.photo_id AND older.model_version = newer.model_version "
    "WHERE older.id = {table}.prediction_id)"
)


def upgrade() -> None:
    for table in ("label", "datasetitem"):
        op.execute(
            f"UPDATE {table} SET prediction_id = {_NEWEST_COPY.format(table=table)} "
            f"WHERE prediction_id IN (SELECT id FROM prediction WHERE {_OLDER_COPY})"
        )
    op.execute(f"DELETE FROM prediction WHERE {_OLDER_COPY}")
    # A database adopted from before migrations may have the index already (its missing tables are
    # created from the current models).
    op.create_index(
        "uq_prediction_photo_model",
        "prediction",
        ["photo_id", "model_version"],
        unique=True,
        if_not_exists=True,
    )


def downgrade() -> None:
    op.drop_index("uq_prediction_photo_model", table_name="prediction")
