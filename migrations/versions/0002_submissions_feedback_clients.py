"""Submissions group reviews sent together; idempotency keys; one feedback label per client.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-25
"""

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("reviews", sa.Column("submission", sa.String(32), nullable=True))
    op.create_index("ix_reviews_submission", "reviews", ["submission"])
    op.create_index("ix_reviews_scored_at", "reviews", ["scored_at"])
    with op.batch_alter_table("feedback") as batch:
        batch.add_column(sa.Column("client", sa.String(64), nullable=False, server_default=""))
        batch.create_unique_constraint("uq_feedback_review_client", ["review_id", "client"])
    op.create_table(
        "idempotency_keys",
        sa.Column("key", sa.String(128), primary_key=True),
        sa.Column("request_sha256", sa.String(64), nullable=False),
        sa.Column("submission", sa.String(32), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("idempotency_keys")
    with op.batch_alter_table("feedback") as batch:
        batch.drop_constraint("uq_feedback_review_client", type_="unique")
        batch.drop_column("client")
    op.drop_index("ix_reviews_scored_at", "reviews")
    op.drop_index("ix_reviews_submission", "reviews")
    op.drop_column("reviews", "submission")
