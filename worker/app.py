"""The worker's Celery app: separately queued reviews are gathered into batches and scored."""

from __future__ import annotations

import logging
import threading
import time
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
    EXPLANATION_QUEUE,
    RECONCILE_TASK,
    SCORE_TASK,
    SCORING_QUEUE,
    WORKER_QUEUES,
    broker_redis,
    create_celery,
)
from sentiment_core.readiness import REFRESH_EVERY_S, record_ready, worker_name
from sentiment_core.settings import Settings
from sentiment_inference.scoring import Scorer
from worker.explaining import explain_one, requeue_explanations
from worker.scoring import ModelCache, NoActiveModel, requeue_pending, score_batch

log = logging.getLogger(__name__)


class ProcessState:
    """What the process that scores holds: its database sessions, its Redis client and its
    loaded model (the worker itself, or each pool process with --concurrency above 1).

    Created lazily inside the process that scores, after a prefork pool has forked: neither
    SQLAlchemy's connection pool nor TensorFlow survives a fork. A process that serves the
    scoring queue also keeps a ready record in Redis (sentiment_core/readiness.py) while it
    holds a version, warm; one that only explains does not count as ready.
    """

    def __init__(self, settings: Settings, queues: Sequence[str] = WORKER_QUEUES) -> None:
        self.settings = settings
        self.scoring = SCORING_QUEUE in queues
        self.explaining = EXPLANATION_QUEUE in queues
        self.warm: Scorer | None = None  # the scorer warmed up (Scorer.warm_up)
        self.failure: str | None = None  # the last failure to get ready, logged once

    @cached_property
    def sessions(self) -> sessionmaker:
        return make_sessionmaker(make_engine(self.settings.database_url))

    @cached_property
    def redis(self) -> Redis:
        """Where finished batches are announced and the ready record is kept."""
        return broker_redis(self.settings)

    @cached_property
    def models(self) -> ModelCache:
        return ModelCache(self.settings.shadow_share)

    def start(self) -> None:
        """Set this process's TensorFlow threads and get ready now, so the first batch waits
        for nothing; then, in a scoring process, keep getting ready for as long as it lives."""
        if self.settings.worker_threads:
            import tensorflow as tf

            tf.config.threading.set_intra_op_parallelism_threads(self.settings.worker_threads)
            tf.config.threading.set_inter_op_parallelism_threads(1)
        self.get_ready()
        if self.scoring:
            threading.Thread(target=self.keep_ready, name="readiness", daemon=True).start()

    def keep_ready(self) -> None:
        while True:
            time.sleep(REFRESH_EVERY_S)
            self.get_ready()

    def get_ready(self) -> None:
        """Load the active version and warm it up (Scorer.warm_up: about a second, then each
        batch shape compiles in the background the first time it comes), unless the loaded
        scorer already is; in a scoring process, then record it ready. A failure is logged once
        while it lasts."""
        try:
            with self.sessions() as session:
                scorer = self.models.current(session)
            if scorer is not self.warm:
                started = time.monotonic()
                scorer.warm_up(explanations=self.explaining)
                self.warm = scorer
                log.info("model %s warm in %.1f s", scorer.version, time.monotonic() - started)
            if self.scoring:
                record_ready(self.redis, worker=worker_name(), version=scorer.version)
        except Exception as exc:
            if repr(exc) != self.failure:
                trace = not isinstance(exc, NoActiveModel)
                log.warning("not ready, will try again: %s", exc, exc_info=trace)
            self.failure = repr(exc)
        else:
            self.failure = None


def create_worker_app(settings: Settings, queues: Sequence[str] = WORKER_QUEUES) -> Celery:
    """The Celery app with the batching scoring task registered, for a worker on `queues`."""
    app = create_celery(settings)
    state = ProcessState(settings, queues)

    # Not shared (Celery would lend them to every app made later in the process): each closes
    # over this app's settings and state.
    @app.task(
        base=Batches,
        name=SCORE_TASK,
        shared=False,
        flush_every=settings.batch_size,
        flush_interval=settings.batch_wait_s,
    )
    def score_review(requests: list[SimpleRequest]) -> None:
        ids = [i for r in requests for i in r.args[0]]
        score_batch(state.sessions, state.models, ids, settings.max_attempts, app, state.redis)

    @app.task(name=EXPLAIN_TASK, shared=False)
    def explain(explanation_id: int) -> None:
        explain_one(state.sessions, state.models, explanation_id, settings.max_attempts, app)

    @app.task(name=RECONCILE_TASK, shared=False)
    def reconcile() -> None:
        deadline = timedelta(seconds=settings.reconcile_after_s)
        sent = requeue_pending(state.sessions, app, queued_for=deadline, scoring_for=deadline)
        if sent:
            log.warning("reconciler: sent %d stuck reviews again", sent)
        sent = requeue_explanations(state.sessions, app, queued_for=deadline, claimed_for=deadline)
        if sent:
            log.warning("reconciler: sent %d stuck explanations again", sent)

    worker_process_init.connect(lambda **_: state.start(), weak=False)
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
    app = create_worker_app(settings, queues)
    engine = make_engine(settings.database_url)  # disposed before a pool forks
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
            # One process consumes and scores: handing each message to a pool process cost the
            # worker as much CPU as scoring it, and kept two workers from doubling one
            # (bench/drain.py). Several pool processes only when asked for.
            f"--pool={'solo' if concurrency == 1 else 'prefork'}",
            f"--concurrency={concurrency}",
            f"--loglevel={loglevel}",
            "--without-gossip",
            "--without-mingle",
        ]
    )
