"""Scheduled retraining on a real broker: the scoring worker, the trainer service and the beat
are real processes; feedback goes in through the API."""

from __future__ import annotations

import subprocess
import sys
import time
from contextlib import contextmanager

import pytest

from sentiment_cli.processes import stop
from tests.conftest import ROOT, service_env
from tests.factories import NEGATIVE, POSITIVE, new_word_reviews, write_imdb_folder
from tests.test_end_to_end import call, wait_for_results

pytestmark = pytest.mark.integration


@pytest.fixture(autouse=True)
def every_batch_in_shadow(monkeypatch) -> None:
    """Before the worker of `service` starts: it scores every batch with a candidate in shadow."""
    monkeypatch.setenv("SHADOW_SHARE", "1")


@contextmanager
def retraining_services(settings, imdb, tmp_path):
    """The trainer service, and later the beat: `start_beat()` starts the schedule."""
    env = service_env(settings) | {
        "IMDB_DATA": str(imdb),
        "RETRAIN_EVERY_S": "1",
        "RETRAIN_MIN_FEEDBACK": "20",
        # The written IMDb stand-in has 12 reviews; let feedback be most of the training data.
        "FEEDBACK_MAX_SHARE": "0.9",
        # A candidate that passes scores in shadow for 15 s; the first check after it has scored
        # a review decides. (A candidate that scores nothing in twice its period is rejected: a
        # shorter period let a loaded machine's worker take that long to load the candidate.)
        "SHADOW_PERIOD_S": "15",
    }
    processes = []
    logs = {name: (tmp_path / f"{name}.log").open("w") for name in ("trainer", "beat")}

    def start(name: str) -> None:
        processes.append(
            subprocess.Popen(
                [sys.executable, "-m", "sentiment_cli.main", name],
                cwd=ROOT,
                env=env,
                stdout=logs[name],
                stderr=subprocess.STDOUT,
            )  # fmt: skip
        )

    start("trainer")
    try:
        yield lambda: start("beat")
    finally:
        stop(processes)
        for name, log in logs.items():
            log.close()
            print(f"--- {name} ---\n" + (tmp_path / f"{name}.log").read_text())


def score(base: str, texts: list[str]) -> list[dict]:
    _, body = call(f"{base}/api/v1/reviews", {"reviews": [{"text": t} for t in texts]})
    results = wait_for_results(base, body["ids"])
    return [results[i] for i in body["ids"]]


def give_feedback(base: str, reviews: list[dict], labels: list[str]) -> None:
    for review, label in zip(reviews, labels, strict=True):
        status, _ = call(f"{base}/api/v1/reviews/{review['id']}/feedback", {"label": label})
        assert status == 201


def finished_run(base: str, timeout: float = 300, also: tuple[str, ...] = ()) -> dict:
    """The latest run once it is decided (or in one of the statuses `also`)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        _, runs = call(f"{base}/api/v1/training-runs")
        settled = ("promoted", "rejected", "failed", *also)
        if runs["items"] and runs["items"][0]["status"] in settled:
            return runs["items"][0]
        time.sleep(1)
    raise AssertionError(f"no retraining run finished in {timeout}s")


def accuracy(results: list[dict], labels: list[str]) -> float:
    return sum(r["sentiment"] == label for r, label in zip(results, labels, strict=True)) / len(
        labels
    )


def test_feedback_on_a_new_word_is_learned_and_promoted(service, tiny_model, tmp_path) -> None:
    settings, base = service
    texts = new_word_reviews("zorgly") + new_word_reviews("blorft")
    labels = ["positive"] * 40 + ["negative"] * 40
    with retraining_services(settings, write_imdb_folder(tmp_path / "imdb"), tmp_path) as beat:
        before = score(base, texts)
        assert {r["model_version"] for r in before} == {tiny_model}
        assert accuracy(before, labels) <= 0.75, "the base model already knows these words"
        give_feedback(base, before, labels)
        beat()
        assert finished_run(base, also=("shadow",))["status"] == "shadow"
        in_shadow = score(base, texts[:4])  # traffic for the candidate to score in shadow
        run = finished_run(base)

    assert run["status"] == "promoted", run
    assert {r["model_version"] for r in in_shadow} == {tiny_model}  # served by the active model
    assert run["metrics"]["shadow"]["scored"] == 4
    assert run["decision"].startswith("promoted after its shadow period"), run["decision"]
    assert run["trigger"] == "schedule" and run["reason"].startswith("80 new feedback labels")
    assert run["mode"] == "fine-tune" and "vocabulary grows by" in run["mode_reason"]
    assert "blorft" in run["mode_reason"]  # the first 8 new words are named
    assert run["counts"]["labeled_reviews"] == 80
    feedback = run["metrics"]["feedback"]
    assert feedback["reviews"] == run["counts"]["feedback_holdout"] and feedback["low"] > 0
    candidate = run["candidate_version"]
    assert call(f"{base}/api/v1/models/{candidate}")[1]["active"] is True

    unseen = ["the soundtrack was zorgly", "the costumes felt zorgly", "the editing was blorft",
              "the lighting seemed blorft"]  # fmt: skip
    after = score(base, unseen)
    assert [r["sentiment"] for r in after] == ["positive", "positive", "negative", "negative"]
    assert {r["model_version"] for r in after} == {candidate}


def test_wrong_feedback_is_not_promoted(service, tiny_model, tmp_path) -> None:
    """Feedback that contradicts the IMDb reviews: the candidate's blend is fitted again on
    IMDb reviews and its LSTM keeps its weights, so it stays right on IMDb, is not surely
    better on the (wrong) held-out feedback, and does not go live."""
    settings, base = service
    prefixes = ["honestly,", "frankly,", "overall,", "in short,"]
    texts = [f"{p} {t}" for p in prefixes for t in POSITIVE + NEGATIVE]
    wrong = [label for _ in prefixes for label in ["negative"] * 6 + ["positive"] * 6]
    with retraining_services(settings, write_imdb_folder(tmp_path / "imdb"), tmp_path) as beat:
        reviews = score(base, texts)
        give_feedback(base, reviews, wrong)
        beat()
        run = finished_run(base, also=("waiting",))
        after = score(base, POSITIVE + NEGATIVE)

    assert run["status"] in ("rejected", "waiting"), run
    assert run["metrics"]["imdb"]["low"] >= -settings.gate_max_imdb_drop
    assert call(f"{base}/readyz")[1]["checks"]["model"] == tiny_model
    _, model = call(f"{base}/api/v1/models/{run['candidate_version']}")
    assert model["active"] is False
    right = ["positive"] * len(POSITIVE) + ["negative"] * len(NEGATIVE)
    assert [r["sentiment"] for r in after] == right
