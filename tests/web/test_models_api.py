import re

import pytest
from openapi_spec_validator import validate
from werkzeug.routing import Rule

from sentiment_core.gate import Difference, decide
from tests.conftest import ADMIN_TOKEN, add_model

ADMIN = {"Authorization": f"Bearer {ADMIN_TOKEN}"}


@pytest.fixture
def two_models(settings, tiny_artifact, tiny_model) -> tuple[str, str]:
    return tiny_model, add_model(settings, tiny_artifact, activate=False)


def test_models_are_listed_newest_first_and_paginated(client, two_models) -> None:
    first, second = two_models
    body = client.get("/api/v1/models").json
    assert [m["version"] for m in body["items"]] == [second, first]
    assert [m["active"] for m in body["items"]] == [False, True]
    assert body["items"][1]["metrics"]["test_accuracy"] == 1.0
    assert client.get("/api/v1/models?per_page=1&page=2").json["items"][0]["version"] == first
    assert client.get("/api/v1/models?per_page=500").status_code == 400


def test_one_model_shows_its_history(client, tiny_model) -> None:
    body = client.get(f"/api/v1/models/{tiny_model}").json
    assert body["version"] == tiny_model and body["active"] is True
    missing = client.get("/api/v1/models/v99")
    assert (missing.status_code, missing.json["error"]["code"]) == (404, "not_found")


def test_activation_and_rollback_need_the_admin_token(client, two_models) -> None:
    first, second = two_models
    url = f"/api/v1/models/{second}/activate"
    assert client.post(url).status_code == 401
    wrong = client.post(url, headers={"Authorization": "Bearer nope"})
    assert (wrong.status_code, wrong.json["error"]["code"]) == (401, "unauthorized")
    assert client.post("/api/v1/models/rollback").status_code == 401
    assert client.get(f"/api/v1/models/{first}").json["active"] is True


def test_an_admin_activates_and_rolls_back(client, two_models) -> None:
    first, second = two_models
    activated = client.post(f"/api/v1/models/{second}/activate", headers=ADMIN)
    assert activated.status_code == 200 and activated.json["version"] == second
    assert client.get("/readyz").json["checks"]["model"] == second
    rolled = client.post("/api/v1/models/rollback", headers=ADMIN)
    assert rolled.status_code == 200 and rolled.json["version"] == first
    assert client.get("/readyz").json["checks"]["model"] == first
    unknown = client.post("/api/v1/models/v99/activate", headers=ADMIN)
    assert unknown.status_code == 404


def test_rollback_with_no_earlier_version_is_409(client, tiny_model) -> None:
    response = client.post("/api/v1/models/rollback", headers=ADMIN)
    assert (response.status_code, response.json["error"]["code"]) == (409, "no_previous_version")


def test_without_an_admin_token_configured_nobody_is_admin(settings, make_app, tiny_model):
    from dataclasses import replace

    client = make_app(replace(settings, admin_token="")).test_client()
    response = client.post(f"/api/v1/models/{tiny_model}/activate", headers=ADMIN)
    assert (response.status_code, response.json["error"]["code"]) == (403, "admin_disabled")
    empty = client.post("/api/v1/models/rollback", headers={"Authorization": "Bearer "})
    assert empty.status_code == 403


def test_the_openapi_document_is_valid_and_matches_the_routes(app, client) -> None:
    document = client.get("/api/v1/openapi.json").json
    validate(document)
    documented = {
        (path, method.upper())
        for path, operations in document["paths"].items()
        for method in operations
    }

    def openapi_path(rule: Rule) -> str:
        return re.sub(r"<(?:\w+:)?(\w+)>", r"{\1}", rule.rule)

    routed = {
        (openapi_path(rule), method)
        for rule in app.url_map.iter_rules()
        if rule.endpoint.split(".")[0] in {"api", "metrics"}
        for method in rule.methods - {"HEAD", "OPTIONS"}
    }
    assert documented == routed
    assert ("/api/v1/reviews/{review_id}/feedback", "POST") in documented
    for path, operations in document["paths"].items():
        for method, operation in operations.items():
            assert operation["responses"], f"{method} {path} documents no response"


def test_an_admin_starts_retraining_once_at_a_time(client, sessions, fake_redis, tiny_model):
    import base64
    import json

    from sentiment_core.db import RunStatus, TrainingRun
    from sentiment_core.queue import RETRAIN_TASK, TRAINING_QUEUE

    assert client.post("/api/v1/retrain").status_code == 401
    response = client.post("/api/v1/retrain", headers=ADMIN)
    assert response.status_code == 202 and response.json == {"status": "queued"}
    (raw,) = fake_redis.lrange(TRAINING_QUEUE, 0, -1)
    message = json.loads(raw)
    args, _, _ = json.loads(base64.b64decode(message["body"]))
    assert message["headers"]["task"] == RETRAIN_TASK
    assert args == ["admin", "requested by an admin"]
    again = client.post("/api/v1/retrain", headers=ADMIN)
    assert (again.status_code, again.json["error"]["code"]) == (409, "run_queued")
    fake_redis.delete(TRAINING_QUEUE)  # the trainer took the message and started the run
    with sessions() as session:
        session.add(TrainingRun(trigger="admin", reason="x", status=RunStatus.running))
        session.commit()
    busy = client.post("/api/v1/retrain", headers=ADMIN)
    assert (busy.status_code, busy.json["error"]["code"]) == (409, "run_in_progress")
    assert fake_redis.llen(TRAINING_QUEUE) == 0


def test_training_runs_are_listed_newest_first(client, sessions) -> None:
    from sentiment_core.db import RunStatus, TrainingRun

    imdb, feedback = Difference.from_counts(2000, 0, 0, 0.9), Difference.from_counts(60, 4, 1, 0.9)
    verdict = decide(imdb, feedback, max_imdb_drop=0.005, min_gain=0.0)
    evidence = {
        "imdb": imdb.as_dict(),
        "feedback": feedback.as_dict(),
        "labels_needed": verdict.labels_needed,
    }
    with sessions() as session:
        session.add_all(
            [
                TrainingRun(trigger="schedule", reason="120 new labels", status=RunStatus.rejected,
                            decision="not better on held-out feedback: 0.600 vs 0.600"),
                TrainingRun(trigger="schedule", reason="150 new labels", status=RunStatus.waiting,
                            metrics=evidence, decision=verdict.reason),
                TrainingRun(trigger="admin", reason="requested by an admin"),
            ]
        )  # fmt: skip
        session.commit()
    body = client.get("/api/v1/training-runs").json
    assert [run["trigger"] for run in body["items"]] == ["admin", "schedule", "schedule"]
    assert body["items"][0]["status"] == "running" and body["total"] == 3
    assert body["items"][1]["status"] == "waiting" and body["items"][1]["metrics"] == evidence
    assert body["items"][2]["decision"].startswith("not better")
    page = client.get("/models").get_data(as_text=True)
    assert "120 new labels" in page and "not better on held-out feedback" in page
    assert f"about {verdict.labels_needed} more held-out labels to decide" in page
    running, shown, rejected = re.findall(r'class="evidence">(.*?)</td>', page, re.S)
    assert not running.strip() and not rejected.strip()
    words = re.sub(r"<[^>]+>", " ", shown).split()
    assert words[:4] == ["held-out", "feedback:", "+5.0", f"[{100 * feedback.low:+.1f},"]
    assert "on 60 reviews, 90 %" in shown
