"""Plain functions behind the scoring task: claim reviews, score them in one pass, write back."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path
from typing import cast

from celery import Celery
from sqlalchemy import Table, bindparam, select, update
from sqlalchemy.orm import Session, sessionmaker

from core.db import Review, ReviewStatus, Sentiment, as_utc, utcnow
from core.queue import enqueue_reviews
from core.registry import active_version
from core.scoring import Scorer
from worker import metrics

log = logging.getLogger(__name__)
PENDING = (ReviewStatus.queued, ReviewStatus.scoring)


class NoActiveModel(RuntimeError):
    pass


class ModelCache:
    """Holds the scorer for the active version; reloads when the `active` alias moves."""

    def __init__(self) -> None:
        self.scorer: Scorer | None = None

    def current(self, session: Session) -> Scorer:
        row = active_version(session)
        if row is None:
            raise NoActiveModel("no model version is active; train one with `sentiment train`")
        if self.scorer is None or self.scorer.version != row.version:
            log.info("loading model %s from %s", row.version, row.artifact_path)
            self.scorer = Scorer.load(row.version, Path(row.artifact_path), row.artifact_sha256)
            metrics.MODEL_LOADS.labels(row.version).inc()
        return self.scorer


def requeue_pending(sessions: sessionmaker, app: Celery, chunk: int = 1000) -> int:
    """Enqueue again every review still queued or scoring; returns how many.

    The database, not the broker, is the record of what is owed: a message that a stopped
    worker had prefetched, or that Redis lost, is sent again. Scoring twice is harmless, since
    a review already done is skipped.
    """
    with sessions() as session:
        ids = list(session.scalars(select(Review.id).where(Review.status.in_(PENDING))))
    for start in range(0, len(ids), chunk):
        enqueue_reviews(app, ids[start : start + chunk])
    return len(ids)


def score_batch(sessions: sessionmaker, models: ModelCache, review_ids: Sequence[int]) -> int:
    """Score the still-pending reviews among `review_ids`; returns how many were scored.

    Safe to run twice: reviews already done or failed are skipped, and results are written only
    over rows still marked `scoring`, all in one transaction.
    """
    with sessions() as session:
        claimed = session.execute(
            update(Review)
            .where(Review.id.in_(review_ids), Review.status.in_(PENDING))
            .values(status=ReviewStatus.scoring, attempts=Review.attempts + 1)
            .returning(Review.id, Review.text, Review.created_at)
        ).all()
        session.commit()
        if not claimed:
            return 0
        started = utcnow()
        for row in claimed:
            waited = started - as_utc(row.created_at)
            metrics.QUEUE_WAIT_SECONDS.observe(waited.total_seconds())
        ids = [row.id for row in claimed]
        try:
            scorer = models.current(session)
            with metrics.SCORING_SECONDS.labels(scorer.version).time():
                scores = scorer.score([row.text for row in claimed])
        except Exception as exc:
            log.exception("scoring %d reviews failed", len(ids))
            session.execute(
                update(Review)
                .where(Review.id.in_(ids), Review.status == ReviewStatus.scoring)
                .values(status=ReviewStatus.failed, error=f"{type(exc).__name__}: {exc}")
            )
            session.commit()
            metrics.FAILED.labels(type(exc).__name__).inc(len(ids))
            return 0
        metrics.BATCH_SIZE.observe(len(ids))
        now = utcnow()
        session.connection().execute(
            update(cast(Table, Review.__table__))
            .where(Review.id == bindparam("rid"), Review.status == ReviewStatus.scoring)
            .values(
                status=ReviewStatus.done,
                score=bindparam("score"),
                sentiment=bindparam("sentiment"),
                model_version=scorer.version,
                scored_at=now,
                error=None,
            ),
            [
                {
                    "rid": rid,
                    "score": score,
                    "sentiment": Sentiment.positive if score >= 0.5 else Sentiment.negative,
                }
                for rid, score in zip(ids, scores, strict=True)
            ],
        )
        session.commit()
        metrics.SCORED.labels(scorer.version).inc(len(ids))
        return len(ids)
