"""Claims on reviews being scored, and when a review last moved, for the reconciler.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-25
"""

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("reviews", sa.Column("claim", sa.String(32), nullable=True))
    op.add_column("reviews", sa.Column("updated_at", sa.DateTime(timezone=True), nullable=True))
    op.execute("UPDATE reviews SET updated_at = created_at")
    op.create_index("ix_reviews_status_updated_at", "reviews", ["status", "updated_at"])


def downgrade() -> None:
    op.drop_index("ix_reviews_status_updated_at", "reviews")
    op.drop_column("reviews", "updated_at")
    op.drop_column("reviews", "claim")
