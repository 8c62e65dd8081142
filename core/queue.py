"""The Celery app shared by every service; the web process enqueues by task name only."""

from __future__ import annotations

from collections.abc import Iterable

from celery import Celery

from core.settings import Settings

SCORE_TASK = "worker.score_review"
SCORING_QUEUE = "scoring"


def create_celery(settings: Settings) -> Celery:
    """A Celery app on the configured Redis broker, with no result backend (results live in the
    database)."""
    app = Celery("sentiment", broker=settings.broker_url, set_as_current=False)
    app.conf.update(
        task_default_queue=SCORING_QUEUE,
        task_ignore_result=True,
        task_acks_late=True,
        task_reject_on_worker_lost=True,
        # A worker holds two batches' worth of unacknowledged messages: one scoring, one filling.
        worker_prefetch_multiplier=2 * settings.batch_size,
        broker_connection_retry_on_startup=True,
        broker_transport_options={"visibility_timeout": 3600},
        worker_hijack_root_logger=False,
    )
    return app


def enqueue_reviews(app: Celery, review_ids: Iterable[int]) -> None:
    """Send one scoring message per review over a single broker connection."""
    with app.producer_or_acquire() as producer:
        for review_id in review_ids:
            app.send_task(SCORE_TASK, args=[review_id], queue=SCORING_QUEUE, producer=producer)
