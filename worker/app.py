"""The worker's Celery app: separately queued reviews are gathered into batches and scored."""

from __future__ import annotations

from celery import Celery
from celery_batches import Batches, SimpleRequest

from core.db import make_engine, make_sessionmaker
from core.queue import SCORE_TASK, SCORING_QUEUE, create_celery
from core.settings import Settings
from worker.scoring import ModelCache, score_batch


def create_worker_app(settings: Settings) -> Celery:
    """The Celery app with the scoring task registered.

    The database engine and the model are created lazily inside the process that runs the
    task, after the prefork pool has forked: neither SQLAlchemy pools nor TensorFlow survive a
    fork.
    """
    app = create_celery(settings)
    process: dict[str, object] = {}

    @app.task(
        base=Batches,
        name=SCORE_TASK,
        flush_every=settings.batch_size,
        flush_interval=settings.batch_wait_s,
    )
    def score_review(requests: list[SimpleRequest]) -> None:
        if not process:
            process["sessions"] = make_sessionmaker(make_engine(settings.database_url))
            process["models"] = ModelCache()
        review_ids = [request.args[0] for request in requests]
        score_batch(process["sessions"], process["models"], review_ids)  # type: ignore[arg-type]

    return app


def run_worker(settings: Settings, *, concurrency: int = 1, loglevel: str = "INFO") -> None:
    app = create_worker_app(settings)
    app.set_current()
    app.set_default()
    app.worker_main(
        [
            "worker",
            f"--queues={SCORING_QUEUE}",
            "--pool=prefork",
            f"--concurrency={concurrency}",
            f"--loglevel={loglevel}",
            "--without-gossip",
            "--without-mingle",
        ]
    )
