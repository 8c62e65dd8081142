"""At most one running retraining run, enforced by a partial unique index.

Runs that raced each other (or a dead one and a later one) may both still be `running`: all but
the newest are failed first.

Revision ID: 0012
Revises: 0011
Create Date: 2026-11-28
"""

from datetime import datetime, timezone

import sqlalchemy as sa
from alembic import op

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None

RUNNING = sa.text("status = 'running'")


def upgrade() -> None:
    runs = sa.table(
        "training_runs",
        sa.column("id", sa.Integer),
        sa.column("status", sa.String),
        sa.column("error", sa.Text),
        sa.column("finished_at", sa.DateTime(timezone=True)),
    )
    newest = sa.select(sa.func.max(runs.c.id)).where(runs.c.status == "running")
    op.execute(
        runs.update()
        .where(runs.c.status == "running", runs.c.id != newest.scalar_subquery())
        .values(
            status="failed",
            error="a later run was started while this one was recorded as running",
            finished_at=datetime.now(timezone.utc),
        )
    )
    op.create_index(
        "uq_training_runs_one_running",
        "training_runs",
        ["status"],
        unique=True,
        sqlite_where=RUNNING,
        postgresql_where=RUNNING,
    )


def downgrade() -> None:
    op.drop_index("uq_training_runs_one_running", "training_runs")
