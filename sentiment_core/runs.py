"""Retraining runs as the web and the trainer both see them."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from sentiment_core.db import RunStatus, TrainingRun, utcnow

STALE_RUN = timedelta(hours=6)  # a run still "running" after this long has died; don't wait on it


def running_run(session: Session) -> TrainingRun | None:
    """The run in progress, if any: only one runs at a time."""
    return session.scalar(
        select(TrainingRun).where(
            TrainingRun.status == RunStatus.running, TrainingRun.started_at > utcnow() - STALE_RUN
        )
    )
