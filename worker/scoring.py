"""Plain functions behind the scoring task: claim reviews, score them in one pass, write back."""

from __future__ import annotations

import logging
import random
import threading
import uuid
from collections.abc import Sequence
from datetime import timedelta
from pathlib import Path
from typing import cast

from celery import Celery
from redis import Redis
from sqlalchemy import Row, Table, and_, bindparam, or_, update
from sqlalchemy.orm import Session, sessionmaker

from sentiment_core.db import Review, ReviewStatus, Sentiment, as_utc, utcnow
from sentiment_core.finished import Finished, announce_finished
from sentiment_core.queue import enqueue_reviews
from sentiment_core.registry import active_version, get_version
from sentiment_core.runs import shadow_run
from sentiment_core.text import Reading
from sentiment_inference.scoring import Scorer
from worker import metrics

log = logging.getLogger(__name__)

# Ids a claim names in one statement: a batch of BATCH_SIZE messages of up to 1,000 reviews each
# can pass the 65,535 values PostgreSQL takes in one statement.
CLAIM_CHUNK = 10_000


class NoActiveModel(RuntimeError):
    pass


class ModelCache:
    """Holds the scorer for the active version; reloads when the `active` alias moves. Holds
    too the scorer of a candidate in shadow, which scores `shadow_share` of the batches.

    Shared by the task and the readiness heartbeat of one process (worker/app.py): the lock
    keeps the two from loading the same version twice.
    """

    def __init__(self, shadow_share: float = 0.0) -> None:
        self.scorer: Scorer | None = None
        self.shadow_scorer: Scorer | None = None
        self.shadow_share = shadow_share
        self.lock = threading.Lock()

    def shadow(self, session: Session) -> Scorer | None:
        """The candidate in shadow, when this batch is among its share and there is one. The
        share is drawn first, so the batches outside it ask the database nothing."""
        if random.random() >= self.shadow_share:
            return None
        run = shadow_run(session)
        with self.lock:
            if run is None or run.candidate_version is None:
                self.shadow_scorer = None
                return None
            if self.shadow_scorer is None or self.shadow_scorer.version != run.candidate_version:
                row = get_version(session, run.candidate_version)
                if row is None:
                    return None
                log.info("loading model %s to score in shadow", row.version)
                self.shadow_scorer = Scorer.load(
                    row.version, Path(row.artifact_path), row.artifact_sha256
                )
            return self.shadow_scorer

    def current(self, session: Session) -> Scorer:
        row = active_version(session)
        if row is None:
            raise NoActiveModel("no model version is active; train one with `sentiment train`")
        with self.lock:
            if self.scorer is None or self.scorer.version != row.version:
                log.info("loading model %s from %s", row.version, row.artifact_path)
                path = Path(row.artifact_path)
                self.scorer = Scorer.load(row.version, path, row.artifact_sha256)
                metrics.MODEL_LOADS.labels(row.version).inc()
            return self.scorer


def requeue_pending(
    sessions: sessionmaker,
    app: Celery,
    *,
    queued_for: timedelta,
    scoring_for: timedelta,
    chunk: int = 1000,
) -> int:
    """Enqueue again the reviews the database still owes; returns how many.

    The database, not the broker, is the record of what is owed: a review queued longer than
    `queued_for` lost its message (Redis restarted empty, or a stopped worker had prefetched
    it), and one scoring longer than `scoring_for` belongs to a batch whose worker died. Both
    are queued again; the dead batch's claim is dropped so it can no longer write. A duplicate
    message is harmless: only queued reviews are claimed.
    """
    now = utcnow()
    stale = or_(
        and_(Review.status == ReviewStatus.queued, Review.updated_at <= now - queued_for),
        and_(Review.status == ReviewStatus.scoring, Review.updated_at <= now - scoring_for),
    )
    with sessions() as session:
        ids = list(
            session.scalars(
                update(Review)
                .where(stale)
                .values(status=ReviewStatus.queued, claim=None, updated_at=now)
                .returning(Review.id)
            )
        )
        session.commit()
    ids.sort()
    for start in range(0, len(ids), chunk):
        enqueue_reviews(app, ids[start : start + chunk])
    return len(ids)


def score_batch(
    sessions: sessionmaker,
    models: ModelCache,
    review_ids: Sequence[int],
    max_attempts: int = 3,
    app: Celery | None = None,
    redis: Redis | None = None,
) -> int:
    """Score the queued reviews among `review_ids`; returns how many results were written.

    Safe to run twice and beside other workers: a batch claims only queued reviews, under its
    own token, and writes results only over rows still holding that claim, in one transaction.
    If scoring the batch fails, each review is scored alone, so one bad review cannot sink the
    others (a model that cannot be loaded fails them all at once);
    a review that fails is queued again (through `app`) until its `max_attempts`-th attempt,
    then marked failed with the reason. A review claimed `max_attempts` times already (its
    workers kept dying) is failed without another try. Once committed, the reviews the batch
    finished (done or failed for good) are announced on `redis`, for the web's waiting requests.
    """
    token = uuid.uuid4().hex
    with sessions() as session:
        claimed = [
            row
            for start in range(0, len(review_ids), CLAIM_CHUNK)
            for row in session.execute(
                update(Review)
                .where(
                    Review.id.in_(review_ids[start : start + CLAIM_CHUNK]),
                    Review.status == ReviewStatus.queued,
                )
                .values(
                    status=ReviewStatus.scoring,
                    attempts=Review.attempts + 1,
                    claim=token,
                    updated_at=utcnow(),
                )
                .returning(
                    Review.id,
                    Review.text,
                    Review.created_at,
                    Review.attempts,
                    Review.error,
                    Review.submission,
                )
            ).all()
        ]
        session.commit()
        exhausted = [row for row in claimed if row.attempts > max_attempts]
        claimed = [row for row in claimed if row.attempts <= max_attempts]
        finished: list[Finished] = []
        for row in exhausted:
            reason = row.error or "the worker scoring it stopped"
            finish(session, token, row.id, f"gave up after {max_attempts} attempts: {reason}")
            finished.append((row.id, row.submission))
        session.commit()  # before scoring: on SQLite, an open write would lock out every writer
        if not claimed:
            announce(redis, finished)
            return 0
        started = utcnow()
        for row in claimed:
            waited = started - as_utc(row.created_at)
            metrics.QUEUE_WAIT_SECONDS.observe(waited.total_seconds())
        texts = [row.text for row in claimed]
        outcomes: Sequence[tuple[float, Reading] | Exception]
        scorer: Scorer | None = None  # this batch's: the cache's may move to a newer version
        try:
            scorer = models.current(session)
        except Exception as exc:
            log.exception("no model to score %d reviews with", len(texts))
            outcomes = [exc] * len(texts)
        else:
            try:
                with metrics.SCORING_SECONDS.labels(scorer.version).time():
                    outcomes = scorer.read_and_score(texts)
            except Exception:
                log.exception("a batch of %d failed; scoring its reviews one by one", len(texts))
                outcomes = [score_alone(scorer, text) for text in texts]
        done = [
            (row.id, *outcome)
            for row, outcome in zip(claimed, outcomes, strict=True)
            if not isinstance(outcome, Exception)
        ]
        written = write_results(session, token, scorer, done)
        retry = []
        for row, outcome in zip(claimed, outcomes, strict=True):
            if not isinstance(outcome, Exception) or settle_failure(
                session, token, row, outcome, max_attempts
            ):
                finished.append((row.id, row.submission))
            else:
                retry.append(row.id)
        session.commit()
    if written and scorer is not None:  # counted once committed: a worker killed first wrote none
        metrics.SCORED.labels(scorer.version).inc(written)
    announce(redis, finished)
    if retry and app is not None:
        enqueue_reviews(app, retry)
    if written:  # after the announcement: a candidate in shadow never delays a served result
        scored = {rid for rid, *_ in done}
        with sessions() as session:
            score_in_shadow(session, models, [row for row in claimed if row.id in scored])
    return written


def score_in_shadow(session: Session, models: ModelCache, rows: list[Row]) -> None:
    """When a candidate is in shadow and this batch is in its share, score the batch's reviews
    with it too and store its scores beside the served ones (after the batch committed). A
    failure is logged, never raised: the served results stand either way."""
    try:
        shadow = models.shadow(session)
        if shadow is None:
            return
        scores = shadow.score([row.text for row in rows])
        session.connection().execute(
            update(cast(Table, Review.__table__))
            .where(Review.id == bindparam("rid"))
            .values(shadow_score=bindparam("shadow"), shadow_version=shadow.version),
            [
                {"rid": row.id, "shadow": float(score)}
                for row, score in zip(rows, scores, strict=True)
            ],
        )
        session.commit()
    except Exception:
        session.rollback()
        log.warning("could not score %d reviews in shadow", len(rows), exc_info=True)


def announce(redis: Redis | None, finished: list[Finished]) -> None:
    """Announce a committed batch's finished reviews. The results are already written and
    waiting requests read them again on their own, so a failure is logged, never raised: the
    batch must not fail or run again for it."""
    if redis is None or not finished:
        return
    try:
        announce_finished(redis, finished)
    except Exception:
        log.warning("could not announce %d finished reviews", len(finished), exc_info=True)


def score_alone(scorer: Scorer, text: str) -> tuple[float, Reading] | Exception:
    try:
        return scorer.read_and_score([text])[0]
    except Exception as exc:
        return exc


def settle_failure(
    session: Session, token: str, row: Row, exc: Exception, max_attempts: int
) -> bool:
    """Queue a review that failed to score again, or fail it for good after `max_attempts`;
    returns whether it failed for good."""
    reason = f"{type(exc).__name__}: {exc}"
    metrics.FAILED.labels(type(exc).__name__).inc()
    if row.attempts >= max_attempts:
        reason = f"failed on attempt {row.attempts} of {max_attempts}: {reason}"
        finish(session, token, row.id, reason)
        return True
    session.execute(
        update(Review)
        .where(Review.id == row.id, Review.claim == token)
        .values(status=ReviewStatus.queued, claim=None, error=reason, updated_at=utcnow())
    )
    return False


def finish(session: Session, token: str, review_id: int, reason: str) -> None:
    """Mark a claimed review failed with `reason`."""
    session.execute(
        update(Review)
        .where(Review.id == review_id, Review.claim == token)
        .values(status=ReviewStatus.failed, claim=None, error=reason, updated_at=utcnow())
    )


def write_results(
    session: Session,
    token: str,
    scorer: Scorer | None,
    results: list[tuple[int, float, Reading]],
) -> int:
    """Write results (review, score, and what the model read of it: its unknown words' number,
    share and list) over the rows this batch still holds; returns how many were written."""
    if not results or scorer is None:
        return 0
    version = scorer.version
    metrics.BATCH_SIZE.observe(len(results))
    now = utcnow()
    return int(
        session.connection()
        .execute(
            update(cast(Table, Review.__table__))
            .where(Review.id == bindparam("rid"), Review.claim == token)
            .values(
                status=ReviewStatus.done,
                score=bindparam("score"),
                sentiment=bindparam("sentiment"),
                unknown_words=bindparam("unknown"),
                unknown_share=bindparam("share"),
                new_words=bindparam("new_words"),
                model_version=version,
                scored_at=now,
                updated_at=now,
                claim=None,
                error=None,
            ),
            [
                {
                    "rid": rid,
                    "score": score,
                    "sentiment": Sentiment.of(score),
                    "unknown": reading.unknown,
                    "share": reading.share,
                    "new_words": reading.new_words,
                }
                for rid, score, reading in results
            ],
        )
        .rowcount
    )
