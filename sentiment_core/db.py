"""Database engine and ORM models. The schema itself is created only by Alembic migrations."""

from __future__ import annotations

import enum
import threading
from collections import deque
from datetime import datetime, timezone

from sqlalchemy import (
    JSON,
    Boolean,
    DateTime,
    Enum,
    Float,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
    create_engine,
    event,
    make_url,
    text,
    true,
)
from sqlalchemy.engine import Engine
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship, sessionmaker
from sqlalchemy.pool import QueuePool
from sqlalchemy.util.queue import Empty
from sqlalchemy.util.queue import Queue as PoolQueue


def utcnow() -> datetime:
    return datetime.now(timezone.utc)


def as_utc(moment: datetime) -> datetime:
    """`moment` as an aware UTC time: SQLite hands back naive datetimes, and every stored time
    is UTC."""
    return moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc)


class Base(DeclarativeBase):
    pass


class ReviewStatus(str, enum.Enum):
    queued = "queued"
    scoring = "scoring"
    done = "done"
    failed = "failed"


THRESHOLD = 0.5  # the decision rule's: a score at or above it is positive


def is_positive(score: float) -> bool:
    """The decision rule, the one place it is written: positive at a score of 0.5 or more."""
    return score >= THRESHOLD


class Sentiment(str, enum.Enum):
    positive = "positive"
    negative = "negative"

    @classmethod
    def of(cls, score: float) -> Sentiment:
        return cls.positive if is_positive(score) else cls.negative


class Review(Base):
    __tablename__ = "reviews"
    __table_args__ = (Index("ix_reviews_status_updated_at", "status", "updated_at"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    text: Mapped[str] = mapped_column(Text)
    status: Mapped[ReviewStatus] = mapped_column(
        Enum(ReviewStatus, name="review_status", native_enum=False, length=16),
        default=ReviewStatus.queued,
        index=True,
    )
    sentiment: Mapped[Sentiment | None] = mapped_column(
        Enum(Sentiment, name="sentiment", native_enum=False, length=16)
    )
    score: Mapped[float | None] = mapped_column(Float)
    model_version: Mapped[str | None] = mapped_column(String(64))
    # How many of the review's words the scoring model's vocabulary lacks, their share of its
    # words, and those words once each, space-separated (for the label queue).
    unknown_words: Mapped[int | None] = mapped_column(Integer)
    unknown_share: Mapped[float | None] = mapped_column(Float)
    new_words: Mapped[str | None] = mapped_column(Text)
    # A candidate in shadow (a run's, status `shadow`) scored the review too: its score, kept
    # beside the served one and never shown to users.
    shadow_score: Mapped[float | None] = mapped_column(Float)
    shadow_version: Mapped[str | None] = mapped_column(String(64), index=True)
    error: Mapped[str | None] = mapped_column(Text)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    scored_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), index=True)
    submission: Mapped[str | None] = mapped_column(String(32), index=True)
    # The batch that holds a review in `scoring`: only that batch may write its result.
    claim: Mapped[str | None] = mapped_column(String(32))
    # When the review was last queued or claimed; the reconciler re-sends it after a deadline.
    updated_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), default=utcnow)

    feedback: Mapped[list[Feedback]] = relationship(back_populates="review")


class Feedback(Base):
    """A user's label for a scored review: one per review and client (a newer one replaces it)."""

    __tablename__ = "feedback"
    __table_args__ = (UniqueConstraint("review_id", "client", name="uq_feedback_review_client"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    review_id: Mapped[int] = mapped_column(ForeignKey("reviews.id", ondelete="CASCADE"), index=True)
    label: Mapped[Sentiment] = mapped_column(
        Enum(Sentiment, name="sentiment", native_enum=False, length=16)
    )
    client: Mapped[str] = mapped_column(String(64), default="")
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)

    review: Mapped[Review] = relationship(back_populates="feedback")


class ExplanationStatus(str, enum.Enum):
    queued = "queued"  # waiting, or held by a worker's claim
    done = "done"
    failed = "failed"


class Explanation(Base):
    """Why one model version scored one review as it did (sentiment_inference/explain.py).

    Computed on request by a worker, one per review and version: a request after the active
    version changed adds another, and the earlier one is kept.
    """

    __tablename__ = "explanations"
    __table_args__ = (
        UniqueConstraint("review_id", "model_version", name="uq_explanations_review_version"),
        Index("ix_explanations_status_updated_at", "status", "updated_at"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    review_id: Mapped[int] = mapped_column(ForeignKey("reviews.id", ondelete="CASCADE"), index=True)
    model_version: Mapped[str] = mapped_column(String(64))
    status: Mapped[ExplanationStatus] = mapped_column(
        Enum(ExplanationStatus, name="explanation_status", native_enum=False, length=16),
        default=ExplanationStatus.queued,
    )
    method: Mapped[str | None] = mapped_column(String(32))
    score: Mapped[float | None] = mapped_column(Float)
    tokens: Mapped[list | None] = mapped_column(JSON)
    running_scores: Mapped[list | None] = mapped_column(JSON)
    error: Mapped[str | None] = mapped_column(Text)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    # The worker computing it: only that worker may write its result (as with reviews).
    claim: Mapped[str | None] = mapped_column(String(32))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class IdempotencyKey(Base):
    """A submission's `Idempotency-Key`: a retried POST with the same key and body gets the
    same reviews back instead of new ones."""

    __tablename__ = "idempotency_keys"

    key: Mapped[str] = mapped_column(String(128), primary_key=True)
    request_sha256: Mapped[str] = mapped_column(String(64))
    submission: Mapped[str] = mapped_column(String(32))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class ModelVersion(Base):
    __tablename__ = "model_versions"
    # The registry's invariant, kept by the database: at most one version is active.
    __table_args__ = (
        Index(
            "uq_model_versions_one_active",
            "active",
            unique=True,
            sqlite_where=text("active"),
            postgresql_where=text("active"),
        ),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    version: Mapped[str] = mapped_column(String(64), unique=True)
    preset: Mapped[str] = mapped_column(String(32))
    artifact_path: Mapped[str] = mapped_column(Text)
    artifact_sha256: Mapped[str] = mapped_column(String(64))
    metrics: Mapped[dict] = mapped_column(JSON, default=dict)
    data_fingerprint: Mapped[str | None] = mapped_column(String(64))
    parent_version: Mapped[str | None] = mapped_column(String(64))
    active: Mapped[bool] = mapped_column(Boolean, default=False, index=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    activated_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class RunTrigger(str, enum.Enum):
    schedule = "schedule"
    admin = "admin"


class RunMode(str, enum.Enum):
    fine_tune = "fine-tune"
    scratch = "scratch"


class RunStatus(str, enum.Enum):
    running = "running"
    promoted = "promoted"
    rejected = "rejected"
    waiting = "waiting"  # for more held-out feedback: the gate's evidence does not decide yet
    shadow = "shadow"  # passed the gate; scoring live traffic beside the active model
    failed = "failed"


class TrainingRun(Base):
    """One retraining run: why it started, on what, both models' figures and the decision."""

    __tablename__ = "training_runs"
    # At most one run is running, kept by the database: two processes that both find none
    # running cannot both start one.
    __table_args__ = (
        Index(
            "uq_training_runs_one_running",
            "status",
            unique=True,
            sqlite_where=text("status = 'running'"),
            postgresql_where=text("status = 'running'"),
        ),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    trigger: Mapped[str] = mapped_column(String(16))  # a RunTrigger's value
    reason: Mapped[str] = mapped_column(Text)
    status: Mapped[RunStatus] = mapped_column(
        Enum(RunStatus, name="run_status", native_enum=False, length=16),
        default=RunStatus.running,
        index=True,
    )
    base_version: Mapped[str | None] = mapped_column(String(64))
    candidate_version: Mapped[str | None] = mapped_column(String(64))
    mode: Mapped[str | None] = mapped_column(String(16))  # a RunMode's value
    mode_reason: Mapped[str | None] = mapped_column(Text)
    counts: Mapped[dict] = mapped_column(JSON, default=dict)
    metrics: Mapped[dict] = mapped_column(JSON, default=dict)
    # Run by the trainer service, not by `sentiment retrain`: a trainer that starts fails only
    # these when they are left running, as only the trainer's own can have been left by it.
    by_trainer: Mapped[bool] = mapped_column(Boolean, server_default=true())
    decision: Mapped[str | None] = mapped_column(Text)
    error: Mapped[str | None] = mapped_column(Text)
    started_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    finished_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


POOL_SIZE = 10  # connections kept per process; a web process's threads mostly wait on other things


class FairQueue(PoolQueue):
    """SQLAlchemy's queue of free connections, but first come, first served: a connection put
    back goes straight to the thread that has waited longest. SQLAlchemy's own lets a thread
    that just arrived take it before the waiting thread it woke, which then waits again at the
    back: under load (hundreds of threads to a pool of 10) a thread lost that race for the whole
    30 s timeout."""

    def __init__(self, maxsize: int = 0, use_lifo: bool = False) -> None:
        super().__init__(maxsize, use_lifo)
        self.waiting: deque[list] = deque()  # [event, connection handed over], oldest first

    def put(self, item, block: bool = True, timeout: float | None = None) -> None:
        with self.mutex:  # reentrant: the queue's own put takes it again
            if not self.waiting:
                super().put(item, block, timeout)  # so no connection waits while one does
                return
            waiter = self.waiting.popleft()
            waiter.append(item)
            waiter[0].set()

    def get(self, block: bool = True, timeout: float | None = None):
        with self.mutex:
            if self.queue and not self.waiting:
                return self._get()
            if not block:
                raise Empty
            waiter = [threading.Event()]
            self.waiting.append(waiter)
        waiter[0].wait(timeout)
        with self.mutex:
            if len(waiter) == 2:  # handed over, perhaps just as the wait timed out
                return waiter[1]
            self.waiting.remove(waiter)
        raise Empty


class FairQueuePool(QueuePool):
    _queue_class = FairQueue  # the class QueuePool keeps its free connections in


# A server that takes the connection and never answers (paused, frozen, cut off) would hold a
# request, or a worker's batch, for ever: a connection must open in CONNECT_TIMEOUT_S, and one
# whose data goes unacknowledged for 30 s is dropped. (A server process stopped on a host that
# still acknowledges for it is not covered: its pooled connections wait.)
CONNECT_TIMEOUT_S = 5
UTC_SESSIONS = "-c timezone=UTC"
POSTGRESQL_CONNECT = {
    "options": UTC_SESSIONS,
    "connect_timeout": CONNECT_TIMEOUT_S,
    "keepalives": 1,
    "keepalives_idle": 30,
    "keepalives_interval": 10,
    "keepalives_count": 3,
    "tcp_user_timeout": 30_000,
}


def make_engine(url: str) -> Engine:
    """An engine for `url`. SQLite gets WAL and foreign keys so web and workers can share it;
    PostgreSQL sessions run in UTC, so times come back in UTC whatever the server's zone.

    A server's connections are kept, POOL_SIZE per process, and a thread that finds them all
    busy waits in line for one to come free (FairQueue; web/app.py answers 503 after 30 s):
    opening more for a burst, and closing them after, cost a fifth of the service's throughput
    in bench/overhead.py, since each opening is an authentication."""
    if url.startswith("sqlite"):
        engine = create_engine(url, connect_args={"timeout": 30})

        @event.listens_for(engine, "connect")
        def _sqlite_pragmas(dbapi_conn, _record):
            cursor = dbapi_conn.cursor()
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA foreign_keys=ON")
            cursor.close()

        return engine
    pooled: dict = {
        "poolclass": FairQueuePool,
        "pool_pre_ping": True,
        "pool_size": POOL_SIZE,
        "max_overflow": 0,
    }
    parsed = make_url(url)
    if parsed.get_backend_name() == "postgresql":
        # The URL's own options win; its server options follow the time zone's.
        given = parsed.query
        connect = {k: v for k, v in POSTGRESQL_CONNECT.items() if k not in given}
        extra = given.get("options", ())
        connect["options"] = " ".join(
            [UTC_SESSIONS, *([extra] if isinstance(extra, str) else extra)]
        )
        return create_engine(url, connect_args=connect, **pooled)
    return create_engine(url, **pooled)


def make_sessionmaker(engine: Engine) -> sessionmaker:
    return sessionmaker(engine, expire_on_commit=False)
