"""api tokens: web API clients, and the name of whoever gave a label where an id does not say

``apitoken`` holds each client's name and the SHA-256 of its token; ``label.user_name`` records an
API token's name on the labels it gives. Both are new: nothing existing changes.

Revision ID: 0008_api_tokens
Revises: 0006_dogs
Create Date: 2026-11-27 14:50:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0008_api_tokens"
down_revision: str | Sequence[str] | None = "0007_member_language"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # A database adopted from before migrations got its tables from the current models
    # (storage.migrations.prepare): the new table and column may be there already.
    inspector = sa.inspect(op.get_bind())
    if not inspector.has_table("apitoken"):
        op.create_table(
            "apitoken",
            sa.Column("id", sa.Integer(), nullable=False),
            sa.Column("name", sa.String(length=64), nullable=False),
            sa.Column("token_sha256", sa.String(length=64), nullable=False),
            sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
            sa.Column("created_by", sa.BigInteger(), nullable=True),
            sa.Column("revoked_at", sa.DateTime(timezone=True), nullable=True),
            sa.PrimaryKeyConstraint("id"),
            sa.UniqueConstraint("name"),
        )
        op.create_index(op.f("ix_apitoken_token_sha256"), "apitoken", ["token_sha256"], unique=True)
    if "user_name" not in {column["name"] for column in inspector.get_columns("label")}:
        op.add_column("label", sa.Column("user_name", sa.String(length=64), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("label") as batch:
        batch.drop_column("user_name")
    op.drop_index(op.f("ix_apitoken_token_sha256"), table_name="apitoken")
    op.drop_table("apitoken")
