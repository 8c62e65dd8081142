"""The dashboard's figures, read from the database (the source of truth), the queue and the
web's shared metrics."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import func, select

from sentiment_core.backlog import WAITING
from sentiment_core.db import Feedback, Review, ReviewStatus, as_utc, utcnow
from sentiment_core.queue import SCORING_QUEUE
from sentiment_core.registry import active_version
from web.metrics import submissions_refused
from web.services import get_services

WINDOW_MINUTES = 10  # throughput and latency are over the reviews scored this recently
LATENCY_SAMPLE = 5_000  # newest scored reviews the latency percentiles are taken over


def percentile(sorted_values: list[float], share: float) -> float | None:
    if not sorted_values:
        return None
    return sorted_values[min(len(sorted_values) - 1, int(share * len(sorted_values)))]


def queue_depth() -> int | None:
    try:
        return int(get_services().redis.llen(SCORING_QUEUE))
    except Exception:
        return None


def collect_stats() -> dict:
    since = utcnow() - timedelta(minutes=WINDOW_MINUTES)
    services = get_services()
    with services.sessions() as session:
        by_status = dict(
            session.execute(select(Review.status, func.count()).group_by(Review.status)).all()
        )
        recent = (Review.status == ReviewStatus.done, Review.scored_at >= since)
        times = session.execute(
            select(Review.created_at, Review.scored_at)
            .where(*recent)
            .order_by(Review.id.desc())
            .limit(LATENCY_SAMPLE)
        ).all()
        scored, batches = session.execute(
            select(func.count(), func.count(func.distinct(Review.scored_at))).where(*recent)
        ).one()
        agrees = Feedback.label == Review.sentiment
        verdicts = session.execute(
            select(Review.model_version, agrees, func.count())
            .join(Review, Feedback.review_id == Review.id)
            .group_by(Review.model_version, agrees)
        ).all()
        active = active_version(session)
    version = active.version if active else None
    right = sum(n for _, agreed, n in verdicts if agreed)
    wrong = sum(n for _, agreed, n in verdicts if not agreed)
    on_active = [(agreed, n) for model, agreed, n in verdicts if model == version]
    labels = sum(n for _, n in on_active)
    latencies = sorted(
        (as_utc(done) - as_utc(created)).total_seconds() for created, done in times if done
    )
    waiting = sum(by_status.get(status, 0) for status in WAITING)
    return {
        "queue_depth": queue_depth(),
        "reviews": {status.value: by_status.get(status, 0) for status in ReviewStatus},
        "window_minutes": WINDOW_MINUTES,
        "scored_per_minute": scored / WINDOW_MINUTES,
        "average_batch_size": scored / batches if batches else None,
        "latency_seconds": {
            "mean": sum(latencies) / len(latencies) if latencies else None,
            "p50": percentile(latencies, 0.50),
            "p95": percentile(latencies, 0.95),
        },
        "backlog": {
            "reviews": waiting,
            "seconds": waiting / scored * WINDOW_MINUTES * 60 if scored else None,
            "limit": services.settings.max_backlog,
            "refused": submissions_refused(),
        },
        "feedback": {"total": right + wrong, "right": right, "wrong": wrong},
        "active_model": {
            "version": version,
            "feedback_labels": labels,
            "feedback_accuracy": sum(n for agreed, n in on_active if agreed) / labels
            if labels
            else None,
        },
    }
