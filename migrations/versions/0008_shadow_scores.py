"""Shadow scores: a candidate's score stored beside the served one, never shown to users.

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-26
"""

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("reviews", sa.Column("shadow_score", sa.Float(), nullable=True))
    op.add_column("reviews", sa.Column("shadow_version", sa.String(64), nullable=True))
    op.create_index("ix_reviews_shadow_version", "reviews", ["shadow_version"])


def downgrade() -> None:
    op.drop_index("ix_reviews_shadow_version", "reviews")
    op.drop_column("reviews", "shadow_version")
    op.drop_column("reviews", "shadow_score")
