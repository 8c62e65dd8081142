"""Faults on real processes: workers killed mid-batch, Redis restarted empty, a review that
cannot be scored. The database is the record of what is owed; every accepted review must end
scored exactly once, or failed with its reason."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from dataclasses import replace
from pathlib import Path

import pytest
from prometheus_client import CollectorRegistry, multiprocess
from sqlalchemy import func, select
from werkzeug.serving import make_server

from sentiment_cli.processes import start_redis, stop
from sentiment_core.db import (
    Explanation,
    ExplanationStatus,
    Review,
    ReviewStatus,
    make_engine,
    make_sessionmaker,
)
from tests.conftest import ROOT, close_database, service_env
from tests.factories import NEGATIVE, POSITIVE
from tests.test_end_to_end import call, submit_batches

pytestmark = pytest.mark.integration


class Deployment:
    """Redis, the web app over HTTP, and worker and beat processes that tests can kill."""

    def __init__(self, settings, tmp_path: Path) -> None:
        self.redis_dir = tmp_path / "redis"
        self.redis, url = start_redis(self.redis_dir, persist=False)
        self.settings = replace(settings, redis_url=url)
        self.metrics = tmp_path / "metrics"
        self.metrics.mkdir()
        self.logs = tmp_path / "logs"
        self.logs.mkdir()
        self.env = service_env(self.settings) | {
            "PROMETHEUS_MULTIPROC_DIR": str(self.metrics),
            "BATCH_SIZE": "1",  # one submission per batch: many batches, so kills land mid-run
            "RECONCILE_EVERY_S": "1",
            "RECONCILE_AFTER_S": "4",
        }
        self.processes: list[subprocess.Popen] = []
        from web.app import create_app

        self.app = create_app(self.settings)
        self.server = make_server("127.0.0.1", 0, self.app, threaded=True)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.base = f"http://127.0.0.1:{self.server.server_port}"
        engine = make_engine(self.settings.database_url)
        self.engine, self.sessions = engine, make_sessionmaker(engine)

    def start(self, *command: str) -> subprocess.Popen:
        """`python -m <command>` in its own process group, so kill -9 takes its pool too."""
        with (self.logs / f"{len(self.processes)}-{command[-1]}.log").open("w") as log:
            process = subprocess.Popen(
                [sys.executable, "-m", *command], cwd=ROOT, env=self.env,
                stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
            )  # fmt: skip
        self.processes.append(process)
        return process

    def worker(self) -> subprocess.Popen:
        return self.start("sentiment_cli.main", "worker", "--loglevel", "WARNING")

    def submit(self, submissions: int, per_submission: int) -> list[int]:
        return submit_batches(self.base, submissions, per_submission)

    def counts(self) -> dict[ReviewStatus, int]:
        with self.sessions() as session:
            rows = session.execute(select(Review.status, func.count()).group_by(Review.status))
            return dict(rows.all())

    def wait(self, condition, timeout: float = 180) -> None:
        deadline = time.monotonic() + timeout
        while not condition(self.counts()):
            assert time.monotonic() < deadline, f"timed out at {self.counts()}\n{self.log_text()}"
            time.sleep(0.2)

    def explained(self) -> int:
        with self.sessions() as session:
            done = Explanation.status == ExplanationStatus.done
            return session.scalar(select(func.count()).where(done))

    def wait_explained(self, condition, timeout: float = 180) -> None:
        deadline = time.monotonic() + timeout
        while not condition(self.explained()):
            assert time.monotonic() < deadline, f"{self.explained()} explained\n{self.log_text()}"
            time.sleep(0.2)

    def metric(self, sample_name: str) -> float:
        """A counter summed over every worker process that ever ran, dead ones too."""
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry, path=str(self.metrics))
        return sum(
            sample.value
            for metric in registry.collect()
            for sample in metric.samples
            if sample.name == sample_name
        )

    def results_written(self) -> float:
        return self.metric("sentiment_reviews_scored_total")

    def log_text(self) -> str:
        return "\n".join(f"--- {p.name} ---\n{p.read_text()}" for p in sorted(self.logs.iterdir()))

    def close(self) -> None:
        self.server.shutdown()
        for process in self.processes:
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGTERM)
        stop(self.processes)
        stop([self.redis])
        self.engine.dispose()
        close_database(self.app)


@pytest.fixture
def deployment(settings, tiny_model, tmp_path):
    deployment = Deployment(settings, tmp_path)
    yield deployment
    deployment.close()


def test_killing_a_worker_mid_run_loses_and_repeats_nothing(deployment) -> None:
    ids = deployment.submit(200, 10)
    assert len(ids) == 2000
    doomed = deployment.worker()
    deployment.wait(lambda c: c.get(ReviewStatus.done, 0) >= 100)
    os.killpg(doomed.pid, signal.SIGKILL)
    doomed.wait()
    at_kill = deployment.counts()
    assert at_kill.get(ReviewStatus.done, 0) < 2000, "the worker finished before it was killed"

    deployment.worker()
    deployment.start("sentiment_cli.main", "beat")
    deployment.wait(lambda c: c.get(ReviewStatus.done, 0) == 2000)
    assert deployment.counts() == {ReviewStatus.done: 2000}
    # Each result written once: never more. The killed worker may have died between a commit
    # and counting it, so the count may miss its last batch (one submission, 10 reviews).
    assert 2000 - 10 <= deployment.results_written() <= 2000


def test_redis_restarted_empty_mid_run_loses_no_accepted_review(deployment) -> None:
    deployment.worker()
    deployment.start("sentiment_cli.main", "beat")
    ids = deployment.submit(200, 10)
    deployment.wait(lambda c: c.get(ReviewStatus.done, 0) >= 100)
    port = int(deployment.settings.redis_url.split(":")[-1].split("/")[0])
    stop([deployment.redis])
    deployment.redis, _ = start_redis(deployment.redis_dir, port=port, persist=False)
    deployment.wait(lambda c: c.get(ReviewStatus.done, 0) == len(ids))
    assert deployment.counts() == {ReviewStatus.done: 2000}
    # Each result written once. A worker counts a batch's results just after its commit, so the
    # count may lag the rows by a moment on a busy machine.
    deadline = time.monotonic() + 10
    while deployment.results_written() < 2000 and time.monotonic() < deadline:
        time.sleep(0.1)
    assert deployment.results_written() == 2000


def test_a_review_that_cannot_be_scored_fails_alone_after_its_retries(deployment) -> None:
    deployment.start("tests.poisoned_worker")
    texts = [POSITIVE[0], "POISON in the reel", NEGATIVE[0], POSITIVE[1]]
    _, body = call(f"{deployment.base}/api/v1/reviews", {"reviews": [{"text": t} for t in texts]})
    deployment.wait(lambda c: c.get(ReviewStatus.done, 0) == 3 and c.get(ReviewStatus.failed))
    results = [call(f"{deployment.base}/api/v1/reviews/{i}")[1] for i in body["ids"]]
    assert [r["sentiment"] for r in results] == ["positive", None, "negative", "positive"]
    poisoned = results[1]
    assert poisoned["status"] == "failed"
    assert poisoned["error"] == "failed on attempt 3 of 3: ValueError: cannot score this review"
    with deployment.sessions() as session:
        assert session.get(Review, poisoned["id"]).attempts == 3


def test_explanations_survive_a_killed_worker_and_redis_restarted_empty(deployment) -> None:
    doomed = deployment.start("tests.slow_explainer")  # 150 explanations take it 15 s at least
    ids = deployment.submit(15, 10)
    deployment.wait(lambda c: c.get(ReviewStatus.done, 0) == len(ids))
    for review_id in ids:
        assert call(f"{deployment.base}/api/v1/reviews/{review_id}/explanation", {})[0] == 202
    deployment.wait_explained(lambda done: done >= 3)  # some, far from all: then kill it
    os.killpg(doomed.pid, signal.SIGKILL)
    doomed.wait()
    assert deployment.explained() < len(ids), "the worker finished before it was killed"
    port = int(deployment.settings.redis_url.split(":")[-1].split("/")[0])
    stop([deployment.redis])  # the queued explanations' messages are lost with it
    deployment.redis, _ = start_redis(deployment.redis_dir, port=port, persist=False)

    deployment.worker()
    deployment.start("sentiment_cli.main", "beat")
    deployment.wait_explained(lambda done: done == len(ids))
    with deployment.sessions() as session:
        rows = session.execute(select(Explanation.status, Explanation.tokens)).all()
    assert {status for status, _ in rows} == {ExplanationStatus.done} and len(rows) == len(ids)
    assert all(tokens for _, tokens in rows)
    # Each written once (the killed worker may have died between a commit and counting it).
    assert len(ids) - 1 <= deployment.metric("sentiment_explanations_total") <= len(ids)


def post(url: str, payload: dict) -> tuple[int, dict]:
    """POST JSON; the status and body, error statuses included."""
    import json
    import urllib.error
    import urllib.request

    request = urllib.request.Request(
        url, data=json.dumps(payload).encode(), headers={"Content-Type": "application/json"}
    )
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())


def test_the_database_down_for_seconds_refuses_cleanly_and_recovers(
    settings, tiny_artifact, postgres_server, tmp_path
) -> None:
    from sentiment_core.migrate import upgrade_database
    from tests.conftest import add_model

    settings = replace(settings, database_url=postgres_server.url)
    upgrade_database(settings)
    add_model(settings, tiny_artifact)
    deployment = Deployment(settings, tmp_path)
    try:
        deployment.worker()
        deployment.start("sentiment_cli.main", "beat")
        accepted = deployment.submit(5, 10)
        deployment.wait(lambda c: c.get(ReviewStatus.done, 0) == 50)

        postgres_server.stop()
        status, body = post(f"{deployment.base}/api/v1/reviews", {"text": "a fine film"})
        assert (status, body["error"]["code"]) == (503, "database_unavailable")
        assert "nothing was stored" in body["error"]["message"]
        time.sleep(3)
        postgres_server.start()

        deadline = time.monotonic() + 30
        while (status := post(f"{deployment.base}/api/v1/reviews", {"text": "back"})[0]) != 202:
            assert time.monotonic() < deadline, f"still {status} after the database came back"
            time.sleep(0.5)
        accepted += deployment.submit(5, 10)
        deployment.wait(lambda c: c.get(ReviewStatus.done, 0) == len(accepted) + 1)
        assert deployment.counts() == {ReviewStatus.done: len(accepted) + 1}
    finally:
        deployment.close()
