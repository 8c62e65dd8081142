"""Each scored review's words that the scoring model's vocabulary lacks, for the label queue.

Revision ID: 0010
Revises: 0009
Create Date: 2026-11-27
"""

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("reviews", sa.Column("new_words", sa.Text(), nullable=True))


def downgrade() -> None:
    op.drop_column("reviews", "new_words")
