"""The trainer service: a Celery worker on its own `training` queue, so a long run never blocks
scoring, one run at a time."""

from __future__ import annotations

import logging

from celery import Celery

from sentiment_core.db import RunTrigger
from sentiment_core.queue import (
    RETRAIN_REQUESTED,
    RETRAIN_TASK,
    TRAINING_QUEUE,
    broker_redis,
    create_celery,
)
from sentiment_core.settings import Settings
from trainer.retrain import RunInProgress, fail_interrupted_runs, retrain

log = logging.getLogger(__name__)


def create_trainer_app(settings: Settings) -> Celery:
    app = create_celery(settings)
    # A run takes minutes: take one message at a time, and acknowledge it before starting, so a
    # run that dies is not repeated on its own (the next scheduled check decides again).
    app.conf.update(worker_prefetch_multiplier=1, task_acks_late=False)

    # Not shared: Celery lends a shared task to every app made later in the process, and this
    # one closes over this app's settings.
    @app.task(name=RETRAIN_TASK, shared=False)
    def retrain_task(trigger: str, reason: str) -> None:
        try:
            run = retrain(settings, trigger=RunTrigger(trigger), reason=reason, by_trainer=True)
        except RunInProgress as exc:
            log.warning("%s: skipped (%s)", reason, exc)
            return
        finally:
            if trigger == RunTrigger.admin.value:  # an admin may ask for the next run
                with broker_redis(settings) as redis:
                    redis.delete(RETRAIN_REQUESTED)
        if run is None:
            log.info("not enough new feedback to retrain")
        else:
            log.info("run %d: %s (%s)", run.id, run.status.value, run.decision or run.error)

    return app


def run_trainer(settings: Settings, loglevel: str = "INFO") -> None:
    if failed := fail_interrupted_runs(settings):
        log.warning("failed %d retraining runs that a stopped trainer left running", failed)
    with broker_redis(settings) as redis:  # held by a trainer that stopped during the run
        redis.delete(RETRAIN_REQUESTED)
    app = create_trainer_app(settings)
    app.set_current()
    app.worker_main(
        [
            "worker",
            f"--queues={TRAINING_QUEUE}",
            "--pool=solo",
            f"--loglevel={loglevel}",
            "--without-gossip",
            "--without-mingle",
            "--hostname=trainer@%h",
        ]
    )
