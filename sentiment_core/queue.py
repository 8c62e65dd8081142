"""The Celery app shared by every service; the web process enqueues by task name only."""

from __future__ import annotations

from collections.abc import Sequence

from celery import Celery
from redis import Redis

from sentiment_core.db import RunTrigger
from sentiment_core.settings import Settings

SCORE_TASK = "worker.score_review"
SCORING_QUEUE = "scoring"
RETRAIN_TASK = "trainer.retrain"  # args: a RunTrigger's value, the reason
TRAINING_QUEUE = "training"
# Held in Redis from an admin's request until the trainer has finished that run, so that two
# requests close together start one run: the trainer takes a message off the queue before it
# records the run. A trainer that stops with it held frees it as it starts again.
RETRAIN_REQUESTED = "trainer:requested"
RETRAIN_REQUESTED_TTL_S = 3600
EXPLAIN_TASK = "worker.explain"  # args: an explanation's id
# Explanations wait on a queue of their own, so a deployment can give them workers of their own.
EXPLANATION_QUEUE = "explanations"
RECONCILE_TASK = "worker.reconcile"
# Beside the scoring queue, so a long backlog never delays the reconciler.
MAINTENANCE_QUEUE = "maintenance"
WORKER_QUEUES = (SCORING_QUEUE, MAINTENANCE_QUEUE, EXPLANATION_QUEUE)  # what a worker serves
VISIBILITY_TIMEOUT_S = 3600
BROKER_TIMEOUT_S = 5  # above the 1 s a worker's BRPOP blocks for


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
        # Longer than any batch takes; a message unacknowledged this long is delivered again.
        # Without socket timeouts kombu waits forever on a Redis that accepts and never answers
        # (paused, partitioned), and a submission holds its web thread as long.
        broker_transport_options={
            "visibility_timeout": VISIBILITY_TIMEOUT_S,
            "socket_timeout": BROKER_TIMEOUT_S,
            "socket_connect_timeout": BROKER_TIMEOUT_S,
        },
        worker_hijack_root_logger=False,
        # A prefork pool process loads and compiles its model before it takes work (about 30 s
        # for the `best` model on 2 cores); Celery's default would kill it after 4 s.
        worker_proc_alive_timeout=300,
    )
    return app


def broker_redis(settings: Settings) -> Redis:
    """A client of the broker's Redis, for the service's own keys (announcements, readiness,
    rate limits, the retrain claim); a short timeout, so a hung Redis holds a request or a
    batch for two seconds at most."""
    return Redis.from_url(settings.broker_url, socket_timeout=2, socket_connect_timeout=2)


def enqueue_reviews(app: Celery, review_ids: Sequence[int]) -> None:
    """Send one scoring message for the reviews of one submission.

    A message carries a list of ids, so a submission of many reviews costs the broker one
    message; workers gather the messages that arrive separately into batches.
    """
    app.send_task(SCORE_TASK, args=[list(review_ids)], queue=SCORING_QUEUE)


def enqueue_explanation(app: Celery, explanation_id: int) -> None:
    app.send_task(EXPLAIN_TASK, args=[explanation_id], queue=EXPLANATION_QUEUE)


def beat_schedule(settings: Settings) -> dict:
    """What `sentiment beat` sends, and how often."""
    return {
        "reconcile": {
            "task": RECONCILE_TASK,
            "schedule": settings.reconcile_every_s,
            "options": {"queue": MAINTENANCE_QUEUE, "expires": settings.reconcile_every_s},
        },
        "retrain-on-feedback": {
            "task": RETRAIN_TASK,
            "schedule": settings.retrain_every_s,
            "args": [RunTrigger.schedule.value, "scheduled check for new feedback"],
            "options": {"queue": TRAINING_QUEUE},
        },
    }


def request_retraining(app: Celery, reason: str) -> None:
    app.send_task(RETRAIN_TASK, args=[RunTrigger.admin.value, reason], queue=TRAINING_QUEUE)
