"""Plain functions behind the explanation task: claim one, compute it, write it back.

The same delivery rules as scoring (worker/scoring.py): only the claim's holder writes, a
failure is tried again up to `max_attempts` times and then shown with its reason, and the
reconciler sends again what a lost message or a dead worker left queued.
"""

from __future__ import annotations

import logging
import uuid
from datetime import timedelta
from pathlib import Path

from celery import Celery
from sqlalchemy import and_, or_, select, update
from sqlalchemy.orm import sessionmaker

from sentiment_core.db import Explanation, ExplanationStatus, Review, utcnow
from sentiment_core.queue import enqueue_explanation
from sentiment_core.registry import get_version
from sentiment_inference.explain import explain
from sentiment_inference.scoring import Scorer
from worker import metrics
from worker.scoring import ModelCache

log = logging.getLogger(__name__)


def explain_one(
    sessions: sessionmaker,
    models: ModelCache,
    explanation_id: int,
    max_attempts: int = 3,
    app: Celery | None = None,
) -> bool:
    """Compute a queued explanation; returns whether this call wrote its outcome."""
    token = uuid.uuid4().hex
    mine = and_(Explanation.id == explanation_id, Explanation.claim == token)
    with sessions() as session:
        claimed = session.execute(
            update(Explanation)
            .where(
                Explanation.id == explanation_id,
                Explanation.status == ExplanationStatus.queued,
                Explanation.claim.is_(None),
            )
            .values(claim=token, attempts=Explanation.attempts + 1, updated_at=utcnow())
            .returning(Explanation.review_id, Explanation.model_version, Explanation.attempts)
        ).one_or_none()
        session.commit()
        if claimed is None:
            return False
        if claimed.attempts > max_attempts:
            reason = session.scalar(select(Explanation.error).where(mine)) or "its worker stopped"
            fail(session, mine, f"gave up after {max_attempts} attempts: {reason}")
            return True
        try:
            text = session.scalars(select(Review.text).where(Review.id == claimed.review_id)).one()
            scorer = scorer_for(session, models, claimed.model_version)
            with metrics.EXPLAIN_SECONDS.time():
                result = explain(scorer, text)
        except Exception as exc:
            log.exception("explanation %d failed", explanation_id)
            reason = f"{type(exc).__name__}: {exc}"
            if claimed.attempts >= max_attempts:
                fail(session, mine, f"failed on attempt {claimed.attempts}: {reason}")
                return True
            session.execute(
                update(Explanation)
                .where(mine)
                .values(claim=None, error=reason, updated_at=utcnow())
            )
            session.commit()
            if app is not None:
                enqueue_explanation(app, explanation_id)
            return False
        written = session.execute(
            update(Explanation)
            .where(mine)
            .values(
                status=ExplanationStatus.done,
                method=result.method,
                score=result.score,
                tokens=result.tokens,
                running_scores=result.running_scores,
                claim=None,
                error=None,
                updated_at=utcnow(),
            )
        ).rowcount
        session.commit()
    if written:  # counted once committed, as scoring counts its results
        metrics.EXPLAINED.labels("done").inc()
    return bool(written)


def scorer_for(session, models: ModelCache, version: str) -> Scorer:
    """The worker's scorer when `version` is the active one, else that version loaded now (an
    explanation requested just before the active version changed)."""
    scorer = models.current(session)
    if scorer.version == version:
        return scorer
    row = get_version(session, version)
    if row is None:
        raise LookupError(f"model version {version} is no longer registered")
    return Scorer.load(row.version, Path(row.artifact_path), row.artifact_sha256)


def fail(session, mine, reason: str) -> None:
    session.execute(
        update(Explanation)
        .where(mine)
        .values(status=ExplanationStatus.failed, claim=None, error=reason, updated_at=utcnow())
    )
    session.commit()
    metrics.EXPLAINED.labels("failed").inc()


def requeue_explanations(
    sessions: sessionmaker, app: Celery, *, queued_for: timedelta, claimed_for: timedelta
) -> int:
    """Send again the explanations still owed: waiting longer than `queued_for` (their message
    was lost), or claimed longer than `claimed_for` (their worker died); returns how many."""
    now = utcnow()
    stale = and_(
        Explanation.status == ExplanationStatus.queued,
        or_(
            and_(Explanation.claim.is_(None), Explanation.updated_at <= now - queued_for),
            and_(Explanation.claim.is_not(None), Explanation.updated_at <= now - claimed_for),
        ),
    )
    with sessions() as session:
        ids = list(
            session.scalars(
                update(Explanation)
                .where(stale)
                .values(claim=None, updated_at=now)
                .returning(Explanation.id)
            )
        )
        session.commit()
    for explanation_id in sorted(ids):
        enqueue_explanation(app, explanation_id)
    return len(ids)
