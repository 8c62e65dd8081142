import base64
import json
import time

import pytest
import redis
from sqlalchemy import func, select

from sentiment_core.db import Feedback, Review, ReviewStatus
from sentiment_core.queue import SCORE_TASK, SCORING_QUEUE
from sentiment_core.readiness import READY_KEY, READY_TTL_S, record_ready
from sentiment_core.registry import activate_version
from sentiment_core.settings import MAX_BATCH_REVIEWS, MAX_REVIEW_CHARS
from tests.conftest import add_model
from web.services import get_services


def queued_messages(fake_redis) -> list[tuple[str, list]]:
    """(task name, args) of every message waiting on the scoring queue, oldest first."""
    out = []
    for raw in reversed(fake_redis.lrange(SCORING_QUEUE, 0, -1)):
        message = json.loads(raw)
        args, _kwargs, _embed = json.loads(base64.b64decode(message["body"]))
        out.append((message["headers"]["task"], args))
    return out


def count(sessions, model=Review) -> int:
    with sessions() as session:
        return session.scalar(select(func.count()).select_from(model))


def test_submitting_one_review_stores_and_enqueues_it(
    client, sessions, fake_redis, tiny_model
) -> None:
    response = client.post("/api/v1/reviews", json={"text": "  A lovely film.  "})
    assert response.status_code == 202
    body = response.get_json()
    review_id = body["id"]
    assert body == {
        "id": review_id,
        "ids": [review_id],
        "status": "queued",
        "url": f"/api/v1/reviews/{review_id}",
        "submission": body["submission"],
    }
    assert queued_messages(fake_redis) == [(SCORE_TASK, [[body["id"]]])]
    shown = client.get(body["url"]).get_json()
    assert shown["status"] == "queued" and shown["sentiment"] is None and shown["score"] is None
    with sessions() as session:
        assert session.get(Review, body["id"]).text == "A lovely film."


def test_submitting_a_batch_enqueues_every_review(client, fake_redis, tiny_model) -> None:
    response = client.post("/api/v1/reviews", json={"reviews": [{"text": "a"}, {"text": "b"}]})
    assert response.status_code == 202
    ids = response.get_json()["ids"]
    assert len(ids) == 2
    assert queued_messages(fake_redis) == [(SCORE_TASK, [ids])]


@pytest.mark.parametrize(
    ("kwargs", "status", "code"),
    [
        ({"data": "not json", "content_type": "application/json"}, 400, "invalid_json"),
        ({"json": ["a list"]}, 400, "invalid_json"),
        ({"json": {}}, 400, "invalid_body"),
        ({"json": {"text": "a", "reviews": []}}, 400, "invalid_body"),
        ({"json": {"text": 5}}, 400, "invalid_type"),
        ({"json": {"text": None}}, 400, "invalid_type"),
        ({"json": {"text": ""}}, 422, "empty_text"),
        ({"json": {"text": " \n\t "}}, 422, "empty_text"),
        ({"json": {"text": "x" * (MAX_REVIEW_CHARS + 1)}}, 413, "text_too_long"),
        ({"json": {"reviews": "a"}}, 400, "invalid_type"),
        ({"json": {"reviews": []}}, 422, "no_reviews"),
        ({"json": {"reviews": ["a"]}}, 400, "invalid_type"),
        ({"json": {"reviews": [{"text": "ok"}, {"text": ""}]}}, 422, "empty_text"),
        ({"json": {"reviews": [{"text": "a"}] * (MAX_BATCH_REVIEWS + 1)}}, 413, "too_many_reviews"),
    ],
)
def test_bad_submissions_are_refused_and_store_nothing(
    client,
    sessions,
    fake_redis,
    tiny_model,
    kwargs,
    status,
    code,
) -> None:
    response = client.post("/api/v1/reviews", **kwargs)
    assert response.status_code == status
    error = response.get_json()["error"]
    assert error["code"] == code and error["message"]
    assert count(sessions) == 0
    assert queued_messages(fake_redis) == []


def test_submissions_wait_for_a_model(client, sessions) -> None:
    response = client.post("/api/v1/reviews", json={"text": "hello"})
    assert response.status_code == 503
    assert response.get_json()["error"]["code"] == "no_model"
    assert count(sessions) == 0


def test_an_unreachable_broker_stores_nothing(app, client, sessions, tiny_model, monkeypatch):
    def refuse(*args, **kwargs):
        raise redis.ConnectionError("connection refused")

    monkeypatch.setattr(get_services(app).celery, "send_task", refuse)
    response = client.post("/api/v1/reviews", json={"reviews": [{"text": "a"}, {"text": "b"}]})
    assert response.status_code == 503
    assert response.get_json()["error"]["code"] == "queue_unavailable"
    assert count(sessions) == 0


def test_a_broker_error_after_a_worker_took_the_message_accepts_the_reviews(
    app, client, sessions, tiny_model, monkeypatch
) -> None:
    """The broker can raise once the message is through (a reply lost): a worker that has
    scored the reviews keeps them, and the client is told they were accepted."""
    from worker.scoring import ModelCache, score_batch

    def deliver_then_time_out(name, args, **kwargs):
        score_batch(get_services(app).sessions, ModelCache(), args[0])
        raise redis.TimeoutError("timed out reading the reply")

    monkeypatch.setattr(get_services(app).celery, "send_task", deliver_then_time_out)
    response = client.post("/api/v1/reviews", json={"text": "a fine film"})
    assert response.status_code == 202
    result = client.get(response.json["url"]).json
    assert result["status"] == "done" and result["model_version"] == tiny_model
    assert count(sessions) == 1


def test_unknown_review_is_404(client) -> None:
    response = client.get("/api/v1/reviews/999")
    assert response.status_code == 404
    assert response.get_json()["error"]["code"] == "not_found"
    assert client.get("/api/v1/nothing-here").get_json()["error"]["code"] == "not_found"


def make_done_review(sessions) -> int:
    from sentiment_core.db import Sentiment, utcnow

    with sessions() as session:
        review = Review(
            text="ok",
            status=ReviewStatus.done,
            sentiment=Sentiment.positive,
            score=0.9,
            model_version="v1",
            scored_at=utcnow(),
        )
        session.add(review)
        session.commit()
        return review.id


def test_a_scored_review_shows_its_result(client, sessions) -> None:
    review_id = make_done_review(sessions)
    body = client.get(f"/api/v1/reviews/{review_id}").get_json()
    assert body["status"] == "done" and body["sentiment"] == "positive"
    assert body["score"] == 0.9 and body["model_version"] == "v1" and body["error"] is None
    assert body["created_at"].endswith("+00:00") and body["scored_at"].endswith("+00:00")


def test_feedback_is_recorded(client, sessions) -> None:
    review_id = make_done_review(sessions)
    response = client.post(f"/api/v1/reviews/{review_id}/feedback", json={"label": "negative"})
    assert response.status_code == 201
    assert response.get_json()["label"] == "negative"
    with sessions() as session:
        (feedback,) = session.scalars(select(Feedback))
    assert feedback.review_id == review_id and feedback.label.value == "negative"


@pytest.mark.parametrize(
    ("payload", "status", "code"),
    [
        ({"label": "meh"}, 422, "invalid_label"),
        ([], 400, "invalid_json"),
        ({}, 422, "invalid_label"),
    ],
)
def test_bad_feedback_is_refused(client, sessions, payload, status, code) -> None:
    review_id = make_done_review(sessions)
    response = client.post(f"/api/v1/reviews/{review_id}/feedback", json=payload)
    assert (response.status_code, response.get_json()["error"]["code"]) == (status, code)
    assert count(sessions, Feedback) == 0


def test_feedback_needs_a_scored_review(client, sessions, tiny_model) -> None:
    missing = client.post("/api/v1/reviews/999/feedback", json={"label": "positive"})
    assert missing.status_code == 404
    review_id = client.post("/api/v1/reviews", json={"text": "x"}).get_json()["id"]
    early = client.post(f"/api/v1/reviews/{review_id}/feedback", json={"label": "positive"})
    assert (early.status_code, early.get_json()["error"]["code"]) == (409, "not_scored")
    assert count(sessions, Feedback) == 0


def test_ready_only_once_a_scoring_worker_holds_the_active_version(
    client, settings, sessions, fake_redis, tiny_model, tiny_artifact
) -> None:
    assert client.get("/healthz").get_json() == {"status": "ok"}
    waiting = client.get("/readyz")
    assert waiting.status_code == 503
    checks = {"database": "ok", "broker": "ok", "model": tiny_model, "workers": 0}
    assert waiting.get_json() == {"ready": False, "checks": checks}
    record_ready(fake_redis, worker="host-a:7", version=tiny_model)
    ready = client.get("/readyz")
    assert ready.status_code == 200
    assert ready.get_json() == {"ready": True, "checks": checks | {"workers": 1}}
    record_ready(fake_redis, worker="host-b:7", version=tiny_model)
    assert client.get("/readyz").get_json()["checks"]["workers"] == 2
    second = add_model(settings, tiny_artifact, activate=False)
    with sessions() as session:
        activate_version(session, second)
    stale = client.get("/readyz")  # both workers still hold the version before
    assert stale.status_code == 503
    assert stale.get_json()["checks"] == checks | {"model": second, "workers": 0}
    record_ready(fake_redis, worker="host-a:7", version=second)
    assert client.get("/readyz").get_json()["checks"]["workers"] == 1


def test_a_worker_that_stops_refreshing_its_record_drops_out(
    client, fake_redis, tiny_model
) -> None:
    record_ready(fake_redis, worker="host:7", version=tiny_model)
    assert 0 < fake_redis.ttl(READY_KEY + "host:7") <= READY_TTL_S
    record_ready(fake_redis, worker="host:7", version=tiny_model, ttl_s=1)
    assert client.get("/readyz").status_code == 200
    time.sleep(1.1)
    gone = client.get("/readyz")
    assert (gone.status_code, gone.get_json()["checks"]["workers"]) == (503, 0)


def test_not_ready_without_a_model_or_a_broker(app, client) -> None:
    get_services(app).redis = redis.Redis(port=1, socket_connect_timeout=0.2)
    response = client.get("/readyz")
    assert response.status_code == 503
    assert response.get_json()["checks"] == {
        "database": "ok",
        "broker": "unavailable",
        "model": "none active",
        "workers": 0,
    }


def test_metrics_report_queue_depth_and_reviews_by_status(client, sessions, tiny_model) -> None:
    client.post("/api/v1/reviews", json={"reviews": [{"text": "a"}, {"text": "b"}]})
    make_done_review(sessions)
    response = client.get("/metrics")
    assert response.status_code == 200
    assert response.content_type.startswith("text/plain")
    lines = response.get_data(as_text=True).splitlines()
    assert "sentiment_queue_depth 1.0" in lines  # one message for the submission
    assert 'sentiment_reviews{status="queued"} 2.0' in lines
    assert 'sentiment_reviews{status="done"} 1.0' in lines
    assert 'sentiment_reviews{status="failed"} 0.0' in lines


def test_metrics_are_served_while_the_database_is_down(app, client) -> None:
    from sentiment_core.db import make_engine, make_sessionmaker

    get_services(app).sessions = make_sessionmaker(make_engine("sqlite:////nonexistent/x.db"))
    response = client.get("/metrics")
    assert response.status_code == 200 and response.content_type.startswith("text/plain")
    lines = response.get_data(as_text=True).splitlines()
    assert 'sentiment_reviews{status="queued"} NaN' in lines
    assert any(line.startswith("sentiment_submissions_refused_total ") for line in lines)


@pytest.mark.parametrize("path", ["/healthz", "/readyz", "/metrics"])
def test_the_probes_answer_errors_in_json_and_ignore_a_body(client, path) -> None:
    wrong = client.delete(path)
    assert wrong.status_code == 405 and wrong.json["error"]["code"] == "method_not_allowed"
    form = client.get(path, data=b"x=%FF", content_type="application/x-www-form-urlencoded")
    assert form.status_code != 400


def test_a_batch_answers_every_id_and_url(client, tiny_model) -> None:
    body = client.post("/api/v1/reviews", json={"reviews": [{"text": "a"}, {"text": "b"}]}).json
    assert body["urls"] == [f"/api/v1/reviews/{i}" for i in body["ids"]]
    assert "id" not in body
    listed = client.get(f"/api/v1/reviews?submission={body['submission']}").json
    assert sorted(item["id"] for item in listed["items"]) == body["ids"]


def test_a_retried_post_with_the_same_idempotency_key_creates_nothing_new(
    client, sessions, fake_redis, tiny_model
) -> None:
    payload = {"reviews": [{"text": "first"}, {"text": "second"}]}
    headers = {"Idempotency-Key": "order-42"}
    first = client.post("/api/v1/reviews", json=payload, headers=headers)
    again = client.post("/api/v1/reviews", json=payload, headers=headers)
    assert first.status_code == again.status_code == 202
    assert again.json == first.json
    assert again.headers["Idempotent-Replayed"] == "true"
    assert "Idempotent-Replayed" not in first.headers
    assert count(sessions) == 2 and len(queued_messages(fake_redis)) == 1
    other = client.post("/api/v1/reviews", json=payload, headers={"Idempotency-Key": "order-43"})
    assert other.json["ids"] != first.json["ids"] and count(sessions) == 4


def test_an_idempotency_key_reused_for_another_body_is_refused(client, sessions, tiny_model):
    headers = {"Idempotency-Key": "k1"}
    client.post("/api/v1/reviews", json={"text": "one"}, headers=headers)
    response = client.post("/api/v1/reviews", json={"text": "two"}, headers=headers)
    assert (response.status_code, response.json["error"]["code"]) == (
        422,
        "idempotency_key_reused",
    )
    bad = client.post("/api/v1/reviews", json={"text": "x"}, headers={"Idempotency-Key": "k" * 129})
    assert (bad.status_code, bad.json["error"]["code"]) == (400, "invalid_idempotency_key")
    assert count(sessions) == 1


def test_a_key_whose_enqueue_failed_can_be_retried(
    app, client, sessions, tiny_model, monkeypatch
) -> None:
    headers = {"Idempotency-Key": "retry-me"}
    with monkeypatch.context() as patch:
        patch.setattr(get_services(app).celery, "send_task", _refuse)
        refused = client.post("/api/v1/reviews", json={"text": "x"}, headers=headers)
        assert refused.status_code == 503
    retried = client.post("/api/v1/reviews", json={"text": "x"}, headers=headers)
    assert retried.status_code == 202 and "Idempotent-Replayed" not in retried.headers
    assert client.get(retried.json["url"]).json["status"] == "queued"


def _refuse(*args, **kwargs):
    raise redis.ConnectionError("connection refused")


def make_reviews(sessions, specs) -> list[int]:
    from sentiment_core.db import Sentiment, utcnow

    with sessions() as session:
        rows = [
            Review(
                text=f"review {i}",
                status=status,
                sentiment=Sentiment(sentiment) if sentiment else None,
                score=0.5 if sentiment else None,
                scored_at=utcnow() if sentiment else None,
            )
            for i, (status, sentiment) in enumerate(specs)
        ]
        session.add_all(rows)
        session.commit()
        return [row.id for row in rows]


def test_reviews_are_listed_newest_first_filtered_and_paginated(client, sessions) -> None:
    done, queued = ReviewStatus.done, ReviewStatus.queued
    ids = make_reviews(
        sessions, [(done, "positive")] * 3 + [(done, "negative")] * 2 + [(queued, None)]
    )
    everything = client.get("/api/v1/reviews").json
    assert [item["id"] for item in everything["items"]] == ids[::-1]
    assert (everything["total"], everything["pages"], everything["page"]) == (6, 1, 1)
    page = client.get("/api/v1/reviews?per_page=4&page=2").json
    assert [item["id"] for item in page["items"]] == ids[1::-1]
    assert (page["total"], page["pages"]) == (6, 2)
    positive = client.get("/api/v1/reviews?sentiment=positive&status=done").json
    assert [item["id"] for item in positive["items"]] == ids[2::-1]
    assert client.get("/api/v1/reviews?status=queued").json["total"] == 1
    assert client.get("/api/v1/reviews?page=9").json["items"] == []


@pytest.mark.parametrize(
    "query", ["status=nope", "sentiment=meh", "page=0", "page=x", "per_page=0", "per_page=101"]
)
def test_bad_list_parameters_are_400(client, query) -> None:
    response = client.get(f"/api/v1/reviews?{query}")
    assert (response.status_code, response.json["error"]["code"]) == (400, "invalid_parameter")


def test_each_client_has_one_label_per_review(client, sessions) -> None:
    review_id = make_done_review(sessions)
    url = f"/api/v1/reviews/{review_id}/feedback"
    assert client.post(url, json={"label": "negative"}).status_code == 201
    changed = client.post(url, json={"label": "positive"})
    assert changed.status_code == 200
    other = client.post(url, json={"label": "negative"}, environ_base={"REMOTE_ADDR": "10.0.0.9"})
    assert other.status_code == 201
    with sessions() as session:
        labels = sorted(f.label.value for f in session.scalars(select(Feedback)))
    assert labels == ["negative", "positive"]
