"""What a client may ask of the service, for the web and the command line alike.

Submitting reviews, reading them back, feedback, and moving the active model. Nothing here
knows HTTP: dependencies come in as keyword arguments, input arrives cleaned
(sentiment_core/inputs.py), and a refusal is an `OperationError` whose subclass says what kind
it is (sentiment_core/errors.py). The web maps each kind to its status in web/errors.py; the
command line prints the message.
"""

from __future__ import annotations

import hashlib
import json
import logging
import uuid
from contextlib import suppress
from dataclasses import dataclass

from celery import Celery
from redis import Redis
from sqlalchemy import Select, case, delete, func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from sentiment_core.backlog import Backlog
from sentiment_core.db import (
    Explanation,
    ExplanationStatus,
    Feedback,
    IdempotencyKey,
    ModelVersion,
    Review,
    ReviewStatus,
    RunStatus,
    Sentiment,
    TrainingRun,
    utcnow,
)
from sentiment_core.errors import Conflict, NotFound, Unacceptable, Unavailable
from sentiment_core.inputs import MAX_ID
from sentiment_core.queue import (
    RETRAIN_REQUESTED,
    RETRAIN_REQUESTED_TTL_S,
    TRAINING_QUEUE,
    enqueue_explanation,
    enqueue_reviews,
    request_retraining,
)
from sentiment_core.registry import activate_version, active_version, previous_version, serving
from sentiment_core.runs import close_run, running_run

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Submission:
    id: str
    review_ids: list[int]
    replayed: bool = False  # True when an Idempotency-Key matched an earlier submission


@dataclass(frozen=True)
class Page:
    items: list
    page: int
    per_page: int
    total: int

    @property
    def pages(self) -> int:
        return max(1, -(-self.total // self.per_page))


def _replay(session: Session, key: str, digest: str) -> Submission | None:
    row = session.get(IdempotencyKey, key)
    if row is None:
        return None
    if row.request_sha256 != digest:
        message = "this Idempotency-Key was already used for a different request"
        raise Unacceptable("idempotency_key_reused", message)
    ids = session.scalars(
        select(Review.id).where(Review.submission == row.submission).order_by(Review.id)
    )
    return Submission(row.submission, list(ids), replayed=True)


def submit_reviews(
    *,
    sessions: sessionmaker[Session],
    celery: Celery,
    backlog: Backlog,
    texts: list[str],
    idempotency_key: str | None = None,
) -> Submission:
    """Store the reviews, then enqueue them as one message.

    Reviews are committed before they are enqueued, so a worker always finds its row. If the
    broker raises, the reviews no worker has claimed are withdrawn with their key, so nothing
    is stored and a retry can succeed, and the caller gets Unavailable; a worker that claimed
    them (the message got through before the error) scores them, and they are accepted. A key
    seen before returns the earlier
    submission, even while the backlog is full; a submission the backlog has no room for is
    refused whole before anything (its key included) is stored.
    """
    digest = hashlib.sha256(json.dumps(texts).encode()).hexdigest()
    with sessions() as session:
        if idempotency_key and (earlier := _replay(session, idempotency_key, digest)):
            return earlier
        if not serving(session):
            raise Unavailable("no_model", "no model is active yet; try again shortly")
        backlog.admit(session, len(texts))
        submission = uuid.uuid4().hex
        reviews = [Review(text=t, status=ReviewStatus.queued, submission=submission) for t in texts]
        session.add_all(reviews)
        if idempotency_key:
            session.add(
                IdempotencyKey(key=idempotency_key, request_sha256=digest, submission=submission)
            )
        try:
            session.commit()
        except IntegrityError:
            session.rollback()
            earlier = _replay(session, idempotency_key, digest) if idempotency_key else None
            if earlier is None:
                raise
            return earlier
        ids = [review.id for review in reviews]
        try:
            enqueue_reviews(celery, ids)
        except Exception as exc:
            log.exception("enqueueing %d reviews failed", len(ids))
            session.execute(delete(IdempotencyKey).where(IdempotencyKey.submission == submission))
            withdrawn = session.execute(
                delete(Review)
                .where(Review.id.in_(ids), Review.status == ReviewStatus.queued)
                .returning(Review.id)
            ).all()
            if not withdrawn:
                session.rollback()
                return Submission(submission, ids)
            session.commit()
            raise Unavailable("queue_unavailable", "the scoring queue is unavailable") from exc
    return Submission(submission, ids)


def find_review(*, sessions: sessionmaker[Session], review_id: int) -> Review | None:
    with sessions() as session:
        return _review(session, review_id)


def _review(session: Session, review_id: int) -> Review | None:
    """The review, or None; an id no column can hold is not looked up (the driver would fail)."""
    return session.get(Review, review_id) if 0 < review_id <= MAX_ID else None


def list_reviews(
    *,
    sessions: sessionmaker[Session],
    page: int,
    per_page: int,
    status: ReviewStatus | None = None,
    sentiment: Sentiment | None = None,
    submission: str | None = None,
) -> Page:
    """The newest reviews first, filtered."""
    query = select(Review)
    if status is not None:
        query = query.where(Review.status == status)
    if sentiment is not None:
        query = query.where(Review.sentiment == sentiment)
    if submission:
        query = query.where(Review.submission == submission)
    return paginate(
        sessions=sessions, query=query.order_by(Review.id.desc()), page=page, per_page=per_page
    )


def paginate(*, sessions: sessionmaker[Session], query: Select, page: int, per_page: int) -> Page:
    """One page of an ordered query's rows, with the total count."""
    with sessions() as session:
        total = session.scalar(select(func.count()).select_from(query.subquery())) or 0
        rows = session.scalars(query.offset((page - 1) * per_page).limit(per_page))
        return Page(list(rows), page, per_page, total)


def _scored_review(session: Session, review_id: int, not_yet: str) -> Review:
    """The review, if it is scored; NotFound, or Conflict saying `not_yet`, if not."""
    review = _review(session, review_id)
    if review is None:
        raise NotFound("not_found", f"no review {review_id}")
    if review.status is not ReviewStatus.done:
        raise Conflict("not_scored", not_yet)
    return review


def record_feedback(
    *, sessions: sessionmaker[Session], review_id: int, label: Sentiment, client: str
) -> tuple[Feedback, bool]:
    """Store `client`'s label for a scored review, replacing the client's earlier one.

    Returns the row and whether it is new.
    """
    with sessions() as session:
        _scored_review(session, review_id, "feedback is taken once the review is scored")
        feedback = session.scalar(
            select(Feedback).where(Feedback.review_id == review_id, Feedback.client == client)
        )
        created = feedback is None
        if feedback is None:
            feedback = Feedback(review_id=review_id, client=client, label=label)
            session.add(feedback)
        else:
            feedback.label = label
        try:
            session.commit()
        except IntegrityError:
            session.rollback()
            raise Conflict("conflict", "feedback for this review is being recorded") from None
        return feedback, created


def client_feedback(
    *, sessions: sessionmaker[Session], review_id: int, client: str
) -> Feedback | None:
    with sessions() as session:
        return session.scalar(
            select(Feedback).where(Feedback.review_id == review_id, Feedback.client == client)
        )


def request_explanation(
    *, sessions: sessionmaker[Session], celery: Celery, review_id: int
) -> tuple[Explanation, bool]:
    """The explanation of a scored review by the active model version, queued for a worker
    unless it is there already (a failed one is tried again). Returns it and whether it was
    queued now."""
    with sessions() as session:
        _scored_review(session, review_id, "a review is explained once it is scored")
        active = active_version(session)
        if active is None:
            raise Unavailable("no_model", "no model is active yet; try again shortly")
        mine = (Explanation.review_id == review_id, Explanation.model_version == active.version)
        explanation = session.scalar(select(Explanation).where(*mine))
        if explanation is not None and explanation.status is not ExplanationStatus.failed:
            return explanation, False
        if explanation is None:
            explanation = Explanation(review_id=review_id, model_version=active.version)
            session.add(explanation)
        else:
            explanation.status = ExplanationStatus.queued
            explanation.error = None
            explanation.attempts = 0
            explanation.updated_at = utcnow()
        try:
            session.commit()
        except IntegrityError:  # another request queued it first
            session.rollback()
            return session.scalars(select(Explanation).where(*mine)).one(), False
        try:
            enqueue_explanation(celery, explanation.id)
        except Exception as exc:
            log.exception("enqueueing explanation %d failed", explanation.id)
            failed = session.execute(  # unless a worker took it: the message got through
                update(Explanation)
                .where(
                    Explanation.id == explanation.id,
                    Explanation.status == ExplanationStatus.queued,
                    Explanation.claim.is_(None),
                )
                .values(
                    status=ExplanationStatus.failed, error="the explanation queue was unavailable"
                )
                .returning(Explanation.id)
            ).first()
            session.commit()
            if failed:
                raise Unavailable(
                    "queue_unavailable", "the explanation queue is unavailable"
                ) from exc
            session.refresh(explanation)
        return explanation, True


def find_explanation(*, sessions: sessionmaker[Session], review_id: int) -> Explanation:
    """The review's explanation by the active model, else the one first requested last (a
    request re-queues a failed one in place, so it takes no new id)."""
    with sessions() as session:
        if _review(session, review_id) is None:
            raise NotFound("not_found", f"no review {review_id}")
        active = active_version(session)
        by_active = Explanation.model_version == (active.version if active else None)
        explanation = session.scalar(
            select(Explanation)
            .where(Explanation.review_id == review_id)
            .order_by(case((by_active, 0), else_=1), Explanation.id.desc())
            .limit(1)
        )
        if explanation is None:
            message = f"no explanation was requested for review {review_id}"
            raise NotFound("not_requested", message)
        return explanation


def activate_model(*, sessions: sessionmaker[Session], version: str) -> ModelVersion:
    """Point the `active` alias at `version`; workers score with it from their next batch."""
    with sessions() as session:
        try:
            return activate_version(session, version)
        except LookupError:
            raise NotFound("not_found", f"no model version {version}") from None


def rollback_model(*, sessions: sessionmaker[Session]) -> ModelVersion:
    """Make the version that was active before the current one active again."""
    with sessions() as session:
        previous = previous_version(session)
        if previous is None:
            raise Conflict("no_previous_version", "no version was active before this one")
        return activate_version(session, previous.version)


def end_shadow(*, sessions: sessionmaker[Session], run_id: int, promote: bool) -> TrainingRun:
    """An admin ends a run's shadow period early: its candidate goes live, or is rejected."""
    with sessions() as session:
        run = session.get(TrainingRun, run_id) if 0 < run_id <= MAX_ID else None
        if run is None:
            raise NotFound("not_found", f"no retraining run {run_id}")
        if run.status != RunStatus.shadow:
            raise Conflict("not_in_shadow", f"run {run_id} is {run.status.value}, not in shadow")
        verb = "promoted" if promote else "rejected"
        if not close_run(session, run, promote, f"{verb} by an admin during its shadow period"):
            raise Conflict("not_in_shadow", f"run {run_id} was closed meanwhile")
        return run


def start_retraining(*, sessions: sessionmaker[Session], celery: Celery, redis: Redis) -> None:
    """Ask the trainer for a run now; refused while one is waiting or in progress."""
    with sessions() as session:
        running = running_run(session)
    if running is not None:
        raise Conflict("run_in_progress", f"retraining run {running.id} is still in progress")
    unavailable = Unavailable("queue_unavailable", "the training queue is unavailable")
    try:
        claimed = not redis.llen(TRAINING_QUEUE) and redis.set(
            RETRAIN_REQUESTED, "1", nx=True, ex=RETRAIN_REQUESTED_TTL_S
        )
    except Exception as exc:
        raise unavailable from exc
    if not claimed:
        raise Conflict("run_queued", "a retraining run is already waiting for the trainer")
    try:
        request_retraining(celery, "requested by an admin")
    except Exception as exc:
        with suppress(Exception):
            redis.delete(RETRAIN_REQUESTED)
        raise unavailable from exc
