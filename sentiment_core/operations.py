"""What a client may ask of the service, for the web and the command line alike.

Submitting reviews, reading them back, feedback, and moving the active model, with the input
cleaning they need. Nothing here knows HTTP: dependencies come in as keyword arguments, and a
refusal is an `OperationError` whose subclass says what kind it is. The web maps each kind to
its status in web/errors.py; the command line prints the message.
"""

from __future__ import annotations

import enum
import hashlib
import json
import logging
import re
import uuid
from dataclasses import dataclass

from celery import Celery
from redis import Redis
from sqlalchemy import Select, delete, func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from sentiment_core.db import (
    Feedback,
    IdempotencyKey,
    ModelVersion,
    Review,
    ReviewStatus,
    Sentiment,
)
from sentiment_core.queue import TRAINING_QUEUE, enqueue_reviews, request_retraining
from sentiment_core.registry import activate_version, active_version, previous_version
from sentiment_core.runs import running_run
from sentiment_core.settings import MAX_BATCH_REVIEWS, MAX_REVIEW_CHARS

log = logging.getLogger(__name__)

MAX_IDEMPOTENCY_KEY = 128  # characters; a UUID or a client's own request id fits easily
# Visible ASCII only: what any HTTP stack carries in a header unchanged.
IDEMPOTENCY_KEY = re.compile(f"[!-~]{{1,{MAX_IDEMPOTENCY_KEY}}}")
MAX_PER_PAGE = 100  # rows in one page of a list
MAX_PAGE = 1_000_000  # far past any real history, and keeps the row offset in a 64-bit integer
DIGITS = re.compile("[0-9]{1,9}")  # a page number or size as sent; longer is out of range anyway
MAX_ID = 2**31 - 1  # the largest id an Integer column holds (PostgreSQL's is 32-bit)
MAX_SUBMISSION = 32  # characters in a submission id: a UUID's hex digits
# Characters that show nothing: whitespace, controls and zero-width or direction marks. A review
# needs one character outside them. Spelled so that Python's and JSON Schema's regexes agree.
INVISIBLE = r"\s\x00-\x1f\x7f-\x9f\xad\u061c\u180e\u200b-\u200f\u202a-\u202e\u2060-\u206f\ufeff"
VISIBLE = re.compile(f"[^{INVISIBLE}]")


class OperationError(Exception):
    """A request the service refuses: a stable code for programs and a message for people."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code, self.message = code, message


class Invalid(OperationError):
    """The input is malformed: the wrong type, or a parameter out of its range."""


class TooLarge(OperationError):
    """The input is well formed but more than the service takes at once."""


class Unacceptable(OperationError):
    """The input is well formed but cannot be used: empty text, a reused idempotency key."""


class NotFound(OperationError):
    """What the request names does not exist."""


class Conflict(OperationError):
    """The request clashes with the current state: an unscored review, a run in progress."""


class Unavailable(OperationError):
    """Something the operation needs is missing for now: a model, the queue."""


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


def clean_text(value: object, where: str = "text") -> str:
    """`value` without surrounding whitespace, or an OperationError saying what is wrong."""
    if not isinstance(value, str):
        raise Invalid("invalid_type", f"{where} must be a string")
    if len(value) > MAX_REVIEW_CHARS:
        message = f"{where} has {len(value)} characters; the limit is {MAX_REVIEW_CHARS}"
        raise TooLarge("text_too_long", message)
    if not VISIBLE.search(value):
        raise Unacceptable("empty_text", f"{where} is empty")
    # A NUL cannot be stored in a PostgreSQL text column, nor a lone surrogate in UTF-8.
    if "\x00" in value or not _encodes(value):
        raise Unacceptable("invalid_text", f"{where} contains a character that is not text")
    return value.strip()


def _encodes(text: str) -> bool:
    try:
        text.encode()
    except UnicodeEncodeError:
        return False
    return True


def clean_texts(values: list[object], where: str = "reviews") -> list[str]:
    if not values:
        raise Unacceptable("no_reviews", f"{where}: there are no reviews to score")
    if len(values) > MAX_BATCH_REVIEWS:
        message = f"{where}: {len(values)} reviews; at most {MAX_BATCH_REVIEWS} at once"
        raise TooLarge("too_many_reviews", message)
    return [clean_text(value, where=f"{where}[{i}]") for i, value in enumerate(values)]


def check_idempotency_key(key: str | None) -> str | None:
    if key is None:
        return None
    if not IDEMPOTENCY_KEY.fullmatch(key):
        message = f"Idempotency-Key must be 1 to {MAX_IDEMPOTENCY_KEY} visible ASCII characters"
        raise Invalid("invalid_idempotency_key", message)
    return key


def parse_choice(value: str | None, choices: type[enum.Enum], name: str):
    """`value` as a member of `choices`, None when absent; Invalid for anything else."""
    if value is None:
        return None
    try:
        return choices(value)
    except ValueError:
        allowed = ", ".join(member.value for member in choices)
        raise Invalid("invalid_parameter", f"{name} must be one of {allowed}") from None


def parse_page(page: str | None, per_page: str | None, default: int = 20) -> tuple[int, int]:
    """Page number and size from query parameters, as decimal digits (int() would also take
    signs, spaces, underscores and other scripts' digits)."""
    number, size = _whole_number(page, 1), _whole_number(per_page, default)
    if not 1 <= number <= MAX_PAGE or not 1 <= size <= MAX_PER_PAGE:
        message = f"page must be an integer from 1 to {MAX_PAGE}, per_page from 1 to {MAX_PER_PAGE}"
        raise Invalid("invalid_parameter", message)
    return number, size


def _whole_number(value: str | None, default: int) -> int:
    """`value` as an int; 0 (out of every range) when it is not a short run of digits."""
    if value is None:
        return default
    return int(value) if DIGITS.fullmatch(value) else 0


def parse_submission(value: str | None) -> str | None:
    if value and len(value) > MAX_SUBMISSION:
        message = f"submission is an id of at most {MAX_SUBMISSION} characters"
        raise Invalid("invalid_parameter", message)
    return value or None


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
    texts: list[str],
    idempotency_key: str | None = None,
) -> Submission:
    """Store the reviews, then enqueue them as one message.

    Reviews are committed before they are enqueued, so a worker always finds its row. If the
    broker refuses them they are marked failed with the reason, the key is released so a retry
    can succeed, and the caller gets Unavailable. A key seen before returns the earlier
    submission.
    """
    digest = hashlib.sha256(json.dumps(texts).encode()).hexdigest()
    with sessions() as session:
        if idempotency_key and (earlier := _replay(session, idempotency_key, digest)):
            return earlier
        if active_version(session) is None:
            raise Unavailable("no_model", "no model is active yet; try again shortly")
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
            session.execute(
                update(Review)
                .where(Review.id.in_(ids))
                .values(status=ReviewStatus.failed, error="the scoring queue was unavailable")
            )
            session.execute(delete(IdempotencyKey).where(IdempotencyKey.submission == submission))
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


def record_feedback(
    *, sessions: sessionmaker[Session], review_id: int, label: Sentiment, client: str
) -> tuple[Feedback, bool]:
    """Store `client`'s label for a scored review, replacing the client's earlier one.

    Returns the row and whether it is new.
    """
    with sessions() as session:
        review = _review(session, review_id)
        if review is None:
            raise NotFound("not_found", f"no review {review_id}")
        if review.status is not ReviewStatus.done:
            raise Conflict("not_scored", "feedback is taken once the review is scored")
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


def start_retraining(*, sessions: sessionmaker[Session], celery: Celery, redis: Redis) -> None:
    """Ask the trainer for a run now; refused while one is waiting or in progress."""
    with sessions() as session:
        running = running_run(session)
    if running is not None:
        raise Conflict("run_in_progress", f"retraining run {running.id} is still in progress")
    unavailable = Unavailable("queue_unavailable", "the training queue is unavailable")
    try:
        waiting = redis.llen(TRAINING_QUEUE)
    except Exception as exc:
        raise unavailable from exc
    if waiting:
        raise Conflict("run_queued", "a retraining run is already waiting for the trainer")
    try:
        request_retraining(celery, "requested by an admin")
    except Exception as exc:
        raise unavailable from exc
