import re
from datetime import timedelta

import pytest
from openapi_spec_validator import validate
from werkzeug.routing import Rule

from sentiment_core.db import (
    Feedback,
    Review,
    ReviewStatus,
    RunStatus,
    Sentiment,
    TrainingRun,
    utcnow,
)
from sentiment_core.gate import Difference, decide, look_confidence
from sentiment_core.registry import active_version
from sentiment_core.runs import close_run
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
    fake_redis.delete(TRAINING_QUEUE)  # the trainer took the message, and records the run
    taken = client.post("/api/v1/retrain", headers=ADMIN)
    assert (taken.status_code, taken.json["error"]["code"]) == (409, "run_queued")
    assert len(fake_redis.lrange(TRAINING_QUEUE, 0, -1)) == 0
    with sessions() as session:
        session.add(TrainingRun(trigger="admin", reason="x", status=RunStatus.running))
        session.commit()
    busy = client.post("/api/v1/retrain", headers=ADMIN)
    assert (busy.status_code, busy.json["error"]["code"]) == (409, "run_in_progress")
    assert fake_redis.llen(TRAINING_QUEUE) == 0


def test_training_runs_are_listed_newest_first(client, sessions) -> None:
    imdb = Difference.from_counts(2000, 0, 0, 0.9)
    feedback = Difference.from_counts(60, 4, 1, look_confidence(0.9, 2))  # judged a second time
    verdict = decide(imdb, feedback, max_imdb_drop=0.005, min_gain=0.0, next_confidence=0.95)
    evidence = {
        "imdb": imdb.as_dict(),
        "feedback": feedback.as_dict(),
        "labels_needed": verdict.labels_needed,
        "looks": 2,
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
    assert "on 60 reviews, 98.5 %, look 2" in " ".join(shown.split())


def add_shadow_run(sessions, base: str, candidate: str) -> int:
    """A run whose candidate has scored two reviews in shadow, one of them labeled."""
    until = (utcnow() + timedelta(hours=1)).isoformat()
    with sessions() as session:
        run = TrainingRun(
            trigger="admin", reason="requested", status=RunStatus.shadow, base_version=base,
            candidate_version=candidate, metrics={"shadow": {"until": until, "share": 0.5}},
            decision="passed the gate",
        )  # fmt: skip
        reviews = [
            Review(text="liked it", status=ReviewStatus.done, score=0.9, model_version=base,
                   shadow_score=0.8, shadow_version=candidate),
            Review(text="hmm", status=ReviewStatus.done, score=0.6, model_version=base,
                   shadow_score=0.3, shadow_version=candidate),
        ]  # fmt: skip
        session.add_all([run, *reviews])
        session.flush()
        session.add(Feedback(review_id=reviews[1].id, label=Sentiment.negative, client="c"))
        session.commit()
        return run.id


def test_the_models_page_shows_a_candidate_in_shadow(client, sessions, two_models) -> None:
    base, candidate = two_models
    add_shadow_run(sessions, base, candidate)
    page = client.get("/models").get_data(as_text=True)
    shown = re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", page))
    assert "In shadow on 50 % of batches until" in shown
    assert "2 reviews scored, 50.0 % agreement with the active model" in shown
    assert "of the 1 with feedback, right on 1 (active: 0)" in shown
    assert "Promote now" in page and "Reject now" in page


def test_shadow_scores_never_reach_a_reviews_public_json(client, sessions, two_models) -> None:
    base, candidate = two_models
    add_shadow_run(sessions, base, candidate)
    for item in client.get("/api/v1/reviews").get_json()["items"]:
        assert not {key for key in item if "shadow" in key}
        assert "shadow" not in str(client.get(f"/api/v1/reviews/{item['id']}").get_json())


@pytest.mark.parametrize("decision", ["promote", "reject"])
def test_an_admin_ends_a_shadow_period_early(client, sessions, two_models, decision) -> None:
    base, candidate = two_models
    run_id = add_shadow_run(sessions, base, candidate)
    url = f"/api/v1/training-runs/{run_id}/shadow"
    assert client.post(url, json={"decision": decision}).status_code == 401
    bad = client.post(url, json={"decision": "maybe"}, headers=ADMIN)
    assert bad.status_code == 422 and bad.get_json()["error"]["code"] == "invalid_decision"
    assert (
        client.post(
            "/api/v1/training-runs/999/shadow", json={"decision": decision}, headers=ADMIN
        ).status_code
        == 404
    )
    done = client.post(url, json={"decision": decision}, headers=ADMIN)
    assert done.status_code == 200
    run = done.get_json()
    status = {"promote": "promoted", "reject": "rejected"}[decision]
    assert run["status"] == status
    assert run["decision"] == f"{status} by an admin during its shadow period"
    assert run["metrics"]["shadow"]["scored"] == 2 and run["finished_at"]
    active = client.get("/api/v1/models").get_json()["items"]
    assert [m["version"] for m in active if m["active"]] == [
        candidate if decision == "promote" else base
    ]
    again = client.post(url, json={"decision": decision}, headers=ADMIN)
    assert again.status_code == 409 and again.get_json()["error"]["code"] == "not_in_shadow"


def test_crossing_decisions_on_a_shadow_run_close_it_once(client, sessions, two_models) -> None:
    base, candidate = two_models
    run_id = add_shadow_run(sessions, base, candidate)
    with sessions() as trainer:  # the trainer read the run in shadow before the admin decided
        stale = trainer.get(TrainingRun, run_id)
        assert stale.status is RunStatus.shadow
        url = f"/api/v1/training-runs/{run_id}/shadow"
        assert client.post(url, json={"decision": "promote"}, headers=ADMIN).status_code == 200
        assert not close_run(trainer, stale, False, "worse on live feedback")
    with sessions() as session:
        run = session.get(TrainingRun, run_id)
        assert (run.status, run.decision) == (
            RunStatus.promoted,
            "promoted by an admin during its shadow period",
        )
        assert active_version(session).version == candidate


def test_a_shadow_run_replaced_by_hand_keeps_its_figures(client, sessions, two_models) -> None:
    base, candidate = two_models
    run_id = add_shadow_run(sessions, base, candidate)
    with sessions() as session:
        assert close_run(session, session.get(TrainingRun, run_id), False, "replaced by hand")
    (run,) = client.get("/api/v1/training-runs").get_json()["items"]
    assert run["metrics"]["shadow"]["scored"] == 2
    page = client.get("/models")
    assert page.status_code == 200
    assert "2 reviews scored, 50.0 % agreement" in re.sub(r"\s+", " ", page.get_data(as_text=True))


def test_the_models_page_ends_a_shadow_period_with_the_admin_token(client, sessions, two_models):
    base, candidate = two_models
    run_id = add_shadow_run(sessions, base, candidate)
    page = client.get("/models").get_data(as_text=True)
    token = re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)
    url = f"/runs/{run_id}/shadow/reject"
    client.post(url, data={"token": "nope", "csrf_token": token})
    assert "A valid admin token is required." in client.get("/models").get_data(as_text=True)
    assert client.post(url, data={"token": ADMIN_TOKEN, "csrf_token": token}).status_code == 303
    assert f"Run {run_id} is rejected." in client.get("/models").get_data(as_text=True)
    with sessions() as session:
        assert session.get(TrainingRun, run_id).status is RunStatus.rejected
