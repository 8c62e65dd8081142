"""The whole path on real processes: HTTP -> database -> Redis -> Celery worker -> database."""

from __future__ import annotations

import json
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from dataclasses import replace

import pytest

from sentiment_cli.processes import free_port
from tests.conftest import ROOT, service_env
from tests.factories import NEGATIVE, POSITIVE

pytestmark = pytest.mark.integration


def call(url: str, payload: dict | None = None, timeout: float = 10) -> tuple[int, dict]:
    data = json.dumps(payload).encode() if payload is not None else None
    request = urllib.request.Request(url, data=data, headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=timeout) as response:
        return response.status, json.loads(response.read())


def submit_batches(base: str, submissions: int, per_submission: int) -> list[int]:
    """Submit `submissions` batches of `per_submission` distinct reviews; their ids."""
    ids = []
    texts = POSITIVE + NEGATIVE
    for s in range(submissions):
        reviews = [
            {"text": f"{texts[(s + i) % len(texts)]} ({s}-{i})"} for i in range(per_submission)
        ]
        status, body = call(f"{base}/api/v1/reviews", {"reviews": reviews})
        assert status == 202, body
        ids += body["ids"]
    return ids


def wait_for_results(base: str, ids: list[int], timeout: float = 120) -> dict[int, dict]:
    deadline = time.monotonic() + timeout
    results: dict[int, dict] = {}
    while time.monotonic() < deadline:
        for review_id in ids:
            if review_id not in results:
                _, body = call(f"{base}/api/v1/reviews/{review_id}")
                if body["status"] in ("done", "failed"):
                    results[review_id] = body
        if len(results) == len(ids):
            return results
        time.sleep(0.2)
    raise AssertionError(f"only {len(results)} of {len(ids)} reviews finished in {timeout}s")


def readiness(base: str) -> tuple[int, dict]:
    """/readyz's status and body, 503 included."""
    try:
        return call(f"{base}/readyz")
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


def submit_and_check(base: str, model_version: str) -> None:
    status, single = call(f"{base}/api/v1/reviews", {"text": POSITIVE[0]})
    assert status == 202
    texts = POSITIVE[1:] + NEGATIVE
    status, batch = call(f"{base}/api/v1/reviews", {"reviews": [{"text": t} for t in texts]})
    assert status == 202
    ids = [single["id"], *batch["ids"]]
    results = wait_for_results(base, ids)
    expected = ["positive"] * len(POSITIVE) + ["negative"] * len(NEGATIVE)
    assert [results[i]["sentiment"] for i in ids] == expected
    assert {results[i]["model_version"] for i in ids} == {model_version}
    assert all(results[i]["status"] == "done" for i in ids)


def stored_reviews(settings):
    from sqlalchemy import select

    from sentiment_core.db import Review, make_engine, make_sessionmaker

    engine = make_engine(settings.database_url)
    with make_sessionmaker(engine)() as session:
        rows = session.scalars(select(Review).order_by(Review.id)).all()
    engine.dispose()
    return rows


def test_reviews_are_scored_by_a_real_worker(service, tiny_model) -> None:
    settings, base = service
    submit_and_check(base, tiny_model)
    rows = stored_reviews(settings)
    assert len(rows) == len(POSITIVE) + len(NEGATIVE)
    assert all(r.status.value == "done" and r.attempts == 1 for r in rows)


def test_ready_once_the_worker_warmed_the_model_and_then_a_review_is_scored_at_once(
    service, tiny_model, tmp_path
) -> None:
    _, base = service
    status, body = readiness(base)  # the worker has only just started
    assert status == 503 and body["checks"]["workers"] == 0, body
    deadline = time.monotonic() + 120
    while (answer := readiness(base))[0] != 200:
        assert time.monotonic() < deadline, answer
        time.sleep(0.2)
    assert answer[1]["checks"] == {
        "database": "ok", "broker": "ok", "model": tiny_model, "workers": 1,
    }  # fmt: skip
    assert f"model {tiny_model} warm in" in (tmp_path / "worker.log").read_text()
    _, single = call(f"{base}/api/v1/reviews", {"text": POSITIVE[0]})
    # Generous for a loaded machine: the first batch of a shape goes through the fallback at
    # once (milliseconds for the tiny model) while XLA compiles the shape in the background.
    result = wait_for_results(base, [single["id"]], timeout=5)[single["id"]]
    assert (result["status"], result["sentiment"]) == ("done", "positive")


@pytest.fixture
def orphaned_reviews(settings, tiny_model) -> list[int]:
    """Reviews stored as queued whose messages never reached the broker (or were lost)."""
    from sentiment_core.db import Review, make_engine, make_sessionmaker

    engine = make_engine(settings.database_url)
    with make_sessionmaker(engine)() as session:
        rows = [Review(text=text) for text in POSITIVE + NEGATIVE]
        session.add_all(rows)
        session.commit()
        ids = [row.id for row in rows]
    engine.dispose()
    return ids


def test_a_starting_worker_scores_reviews_whose_messages_were_lost(
    orphaned_reviews, service
) -> None:
    settings, base = service
    results = wait_for_results(base, orphaned_reviews)
    expected = ["positive"] * len(POSITIVE) + ["negative"] * len(NEGATIVE)
    assert [results[i]["sentiment"] for i in orphaned_reviews] == expected


def test_a_new_active_version_takes_over_without_losing_reviews(
    service, tiny_model, tiny_artifact
) -> None:
    from sentiment_core.db import make_engine, make_sessionmaker
    from sentiment_core.registry import activate_version
    from tests.conftest import add_model

    settings, base = service
    submit_and_check(base, tiny_model)
    second = add_model(settings, tiny_artifact, activate=False)
    engine = make_engine(settings.database_url)
    with make_sessionmaker(engine)() as session:
        activate_version(session, second)
    engine.dispose()
    submit_and_check(base, second)
    rows = stored_reviews(settings)
    half = len(rows) // 2
    assert [r.model_version for r in rows] == [tiny_model] * half + [second] * half
    assert all(r.status.value == "done" and r.attempts == 1 for r in rows)


def add_queued(settings, texts: list[str], submission: str) -> list[int]:
    """Reviews stored as queued, their messages not sent yet."""
    from sentiment_core.db import Review, make_engine, make_sessionmaker

    engine = make_engine(settings.database_url)
    with make_sessionmaker(engine)() as session:
        rows = [Review(text=text, submission=submission) for text in texts]
        session.add_all(rows)
        session.commit()
        ids = [row.id for row in rows]
    engine.dispose()
    return ids


def test_results_are_pushed_as_the_worker_finishes_them(service) -> None:
    from sentiment_core.queue import create_celery, enqueue_reviews

    settings, base = service
    _, first = call(f"{base}/api/v1/reviews", {"text": POSITIVE[0]})
    wait_for_results(base, [first["id"]])  # the worker is up
    celery = create_celery(settings)

    # A long poll that starts before the review is even sent to the worker.
    (review_id,) = add_queued(settings, [POSITIVE[1]], "1" * 32)
    answered: list[tuple[dict, float]] = []
    started = time.monotonic()
    waiting = threading.Thread(
        target=lambda: answered.append(
            (call(f"{base}/api/v1/reviews/{review_id}?wait=30", timeout=40)[1], time.monotonic())
        )
    )
    waiting.start()
    time.sleep(0.5)
    assert waiting.is_alive()
    enqueue_reviews(celery, [review_id])
    waiting.join(40)
    ((review, at),) = answered
    assert review["status"] == "done" and review["sentiment"] == "positive"
    assert at - started < 15  # the worker's announcement, not the 30 s deadline

    # A submission's event stream, opened before its reviews are sent.
    ids = add_queued(settings, NEGATIVE[:3], "2" * 32)
    events: list[dict] = []

    def follow() -> None:
        url = f"{base}/api/v1/submissions/{'2' * 32}/events"
        with urllib.request.urlopen(url, timeout=40) as response:
            assert response.headers["Content-Type"].startswith("text/event-stream")
            for line in response:  # until the server ends the stream
                if line.startswith(b"data: "):
                    events.append(json.loads(line.removeprefix(b"data: ")))

    stream = threading.Thread(target=follow)
    stream.start()
    time.sleep(0.5)
    sent = time.monotonic()
    enqueue_reviews(celery, ids)
    stream.join(40)
    assert not stream.is_alive()  # closed after the last review
    assert time.monotonic() - sent < 10  # on the announcement, not the 15 s re-check
    assert sorted(event["id"] for event in events) == ids
    assert {(event["status"], event["sentiment"]) for event in events} == {("done", "negative")}


def port_open(port: int) -> bool:
    with socket.socket() as sock:
        return sock.connect_ex(("127.0.0.1", port)) == 0


def test_sentiment_up_fails_when_a_service_stops_before_ready(settings, tiny_model) -> None:
    settings = replace(settings, redis_url=None)
    port = free_port()
    env = service_env(settings) | {"GUNICORN_CMD_ARGS": "--no-such-option"}  # the web stops
    result = subprocess.run(
        [sys.executable, "-m", "sentiment_cli.main", "up", "--port", str(port)],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert result.returncode == 1, result.stdout + result.stderr
    assert "sentiment service is up" not in result.stdout
    assert f"web --host 127.0.0.1 --port {port}" in result.stderr.splitlines()[-1]
    assert "before ready" in result.stderr.splitlines()[-1]
    redis_port = int(result.stdout.split("embedded Redis at redis://127.0.0.1:")[1].split("/")[0])
    assert not port_open(redis_port)  # every service it started was stopped


def test_sentiment_up_runs_everything_and_stops_it_on_ctrl_c(
    settings, tiny_model, tmp_path
) -> None:
    port = free_port()
    settings = replace(settings, redis_url=None)
    up = subprocess.Popen(
        [sys.executable, "-m", "sentiment_cli.main", "up", "--port", str(port)],
        cwd=ROOT, env=service_env(settings), stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
        text=True,
        # Ctrl-C reaches it as at a terminal, even where pytest itself runs in a shell's
        # background, which starts it with SIGINT ignored
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )  # fmt: skip
    output: list[str] = []
    reader = threading.Thread(target=lambda: output.extend(up.stdout), daemon=True)  # type: ignore[arg-type]
    reader.start()
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        while f"sentiment service is up: {base}/" not in "".join(output):
            assert up.poll() is None, "".join(output)
            assert time.monotonic() < deadline, "".join(output)
            time.sleep(0.2)
        assert readiness(base)[0] == 200  # up means a worker scores now
        _, single = call(f"{base}/api/v1/reviews", {"text": POSITIVE[0]})
        assert wait_for_results(base, [single["id"]], timeout=5)[single["id"]]["status"] == "done"
        assert "waiting until a scoring worker has loaded the model" in "".join(output)
        redis_port = int(
            next(line for line in output if "embedded Redis" in line).split(":")[-1].split("/")[0]
        )
        submit_and_check(base, tiny_model)
        with urllib.request.urlopen(f"{base}/metrics", timeout=10) as response:
            metrics = dict(
                line.rsplit(" ", 1) for line in response.read().decode().splitlines()
                if line and not line.startswith("#")
            )  # fmt: skip
        reviews = 1 + len(POSITIVE) + len(NEGATIVE)
        scored = f'sentiment_reviews_scored_total{{model_version="{tiny_model}"}}'
        assert float(metrics[scored]) == reviews  # counted across the worker's processes
        assert float(metrics["sentiment_batch_size_sum"]) == reviews
        assert float(metrics["sentiment_batch_size_count"]) < reviews  # batches were gathered
        assert float(metrics['sentiment_reviews{status="done"}']) == reviews
        while not ("beat: Starting" in "".join(output) and "trainer@" in "".join(output)):
            assert time.monotonic() < deadline + 60, "".join(output)
            time.sleep(0.5)
    finally:
        up.send_signal(signal.SIGINT)
        status = up.wait(30)
        reader.join(5)
        up.stdout.close()  # type: ignore[union-attr]
    assert status == 0, "".join(output)
    assert not port_open(port) and not port_open(redis_port)
