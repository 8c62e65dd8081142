"""Each scored review's share of words the scoring model's vocabulary lacks, for the label queue.

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-26
"""

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("reviews", sa.Column("unknown_share", sa.Float(), nullable=True))


def downgrade() -> None:
    op.drop_column("reviews", "unknown_share")
