"""Each scored review's number of words the scoring model's vocabulary lacks, for the label
queue.

Revision ID: 0009
Revises: 0008
Create Date: 2026-11-27
"""

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("reviews", sa.Column("unknown_words", sa.Integer(), nullable=True))


def downgrade() -> None:
    op.drop_column("reviews", "unknown_words")
