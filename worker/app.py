"""The worker's Celery app: separately queued reviews are gathered into batches and scored."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from datetime import timedelta
from functools import cached_property

from celery import Celery
from celery.signals import worker_process_init
from celery_batches import Batches, SimpleRequest
from redis import Redis
from sqlalchemy.orm import sessionmaker

from sentiment_core.db import make_engine, make_sessionmaker
from sentiment_core.queue import (
    EXPLAIN_TASK,
    RECONCILE_TASK,
    SCORE_TASK,
    WORKER_QUEUES,
    create_celery,
)
from sentiment_core.settings import Settings
from worker.explaining import explain_one, requeue_explanations
from worker.scoring import ModelCache, requeue_pending, score_batch

log = logging.getLogger(__name__)


class ProcessState:
    """What one pool process holds: its database sessions, its Redis client and its loaded model.

    Created lazily inside the process that scores, after the prefork pool has forked: neither
    SQLAlchemy's connection pool nor TensorFlow survives a fork.
    """

    def __init__(self, settings: Settings) -> None:
        self.settings = settings

    @cached_property
    def sessions(self) -> sessionmaker:
        return make_sessionmaker(make_engine(self.settings.database_url))

    @cached_property
    def redis(self) -> Redis:
        """Where finished batches are announced; a short timeout, so a hung Redis cannot hold
        a batch for long."""
        return Redis.from_url(self.settings.broker_url, socket_timeout=2, socket_connect_timeout=2)

    @cached_property
    def models(self) -> ModelCache:
        return ModelCache()

    def warm_up(self) -> None:
        """Set this process's TensorFlow threads, then load the active model now, so the first
        batch does not wait for it."""
        if self.settings.worker_threads:
            import tensorflow as tf

            tf.config.threading.set_intra_op_parallelism_threads(self.settings.worker_threads)
            tf.config.threading.set_inter_op_parallelism_threads(1)
        try:
            with self.sessions() as session:
                self.models.current(session).warm_up()
        except Exception:
            log.exception("could not load the active model at start; will retry per batch")


def create_worker_app(settings: Settings) -> Celery:
    """The Celery app with the batching scoring task registered."""
    app = create_celery(settings)
    state = ProcessState(settings)

    @app.task(
        base=Batches,
        name=SCORE_TASK,
        flush_every=settings.batch_size,
        flush_interval=settings.batch_wait_s,
    )
    def score_review(requests: list[SimpleRequest]) -> None:
        ids = [i for r in requests for i in r.args[0]]
        score_batch(state.sessions, state.models, ids, settings.max_attempts, app, state.redis)

    @app.task(name=EXPLAIN_TASK)
    def explain(explanation_id: int) -> None:
        explain_one(state.sessions, state.models, explanation_id, settings.max_attempts, app)

    @app.task(name=RECONCILE_TASK)
    def reconcile() -> None:
        deadline = timedelta(seconds=settings.reconcile_after_s)
        sent = requeue_pending(state.sessions, app, queued_for=deadline, scoring_for=deadline)
        if sent:
            log.warning("reconciler: sent %d stuck reviews again", sent)
        sent = requeue_explanations(state.sessions, app, queued_for=deadline, claimed_for=deadline)
        if sent:
            log.warning("reconciler: sent %d stuck explanations again", sent)

    worker_process_init.connect(lambda **_: state.warm_up(), weak=False)
    return app


def run_worker(
    settings: Settings,
    *,
    concurrency: int = 1,
    queues: Sequence[str] = WORKER_QUEUES,
    metrics_port: int | None = None,
    loglevel: str = "INFO",
) -> None:
    if metrics_port:
        from prometheus_client import CollectorRegistry, multiprocess, start_http_server

        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)
        start_http_server(metrics_port, registry=registry)
    app = create_worker_app(settings)
    engine = make_engine(settings.database_url)  # disposed before the pool forks
    deadline = timedelta(seconds=settings.reconcile_after_s)
    sessions = make_sessionmaker(engine)
    requeued = requeue_pending(sessions, app, queued_for=timedelta(0), scoring_for=deadline)
    explanations = requeue_explanations(
        sessions, app, queued_for=timedelta(0), claimed_for=deadline
    )
    engine.dispose()
    log.info(
        "re-enqueued %d reviews and %d explanations still pending in the database",
        requeued,
        explanations,
    )
    app.set_current()
    app.set_default()
    app.worker_main(
        [
            "worker",
            f"--queues={','.join(queues)}",
            "--pool=prefork",
            f"--concurrency={concurrency}",
            f"--loglevel={loglevel}",
            "--without-gossip",
            "--without-mingle",
        ]
    )
