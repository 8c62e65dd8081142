"""The explanation routes: asked for, queued once, answered from the worker's result, refused
with the right status, and rate limited as submissions are."""

from sqlalchemy import select

from sentiment_core.db import Explanation, Review, ReviewStatus
from sentiment_core.queue import EXPLANATION_QUEUE
from tests.web.test_pages import scored_review
from worker.explaining import explain_one
from worker.scoring import ModelCache


def test_an_explanation_is_queued_then_answered_once_computed(
    client, sessions, fake_redis, tiny_model
) -> None:
    text = "A wonderful film!<br />Loved it, mostly."
    review_id = scored_review(sessions, text)
    url = f"/api/v1/reviews/{review_id}/explanation"
    missing = client.get(url)
    assert missing.status_code == 404 and missing.json["error"]["code"] == "not_requested"
    queued = client.post(url)
    assert queued.status_code == 202 and queued.json == {"status": "queued", "url": url}
    assert queued.headers["Location"] == url
    assert client.post(url).status_code == 202
    assert fake_redis.llen(EXPLANATION_QUEUE) == 1  # asked twice, queued once
    waiting = client.get(url).json
    assert (waiting["status"], waiting["tokens"], waiting["score"]) == ("queued", [], None)
    assert waiting["model_version"] == tiny_model and waiting["review_id"] == review_id

    with sessions() as session:
        (explanation_id,) = session.scalars(select(Explanation.id)).all()
    assert explain_one(sessions, ModelCache(), explanation_id)
    done = client.get(url).json
    assert done["status"] == "done" and done["error"] is None
    assert done["method"] == "integrated-gradients" and 0 <= done["score"] <= 1
    assert [(t["text"], t["start"], t["end"]) for t in done["tokens"]] == [
        ("A", 0, 1), ("wonderful", 2, 11), ("film", 12, 16),
        ("Loved", 23, 28), ("it", 29, 31), ("mostly", 33, 39),
    ]  # fmt: skip
    assert [r["end"] for r in done["running_scores"]] == [16, 39]
    again = client.post(url)
    assert again.status_code == 200 and again.json == done


def test_a_broker_error_after_a_worker_explained_it_keeps_the_explanation(
    app, client, sessions, tiny_model, monkeypatch
) -> None:
    """The broker can raise once the message is through (a reply lost): what the worker
    explained stands, and the request is answered with it."""
    from web.services import get_services

    def deliver_then_time_out(name, args, **kwargs):
        explain_one(sessions, ModelCache(), args[0])
        raise ConnectionError("timed out reading the reply")

    review_id = scored_review(sessions, "A wonderful film")
    url = f"/api/v1/reviews/{review_id}/explanation"
    monkeypatch.setattr(get_services(app).celery, "send_task", deliver_then_time_out)
    answered = client.post(url)
    assert answered.status_code == 200 and answered.json["status"] == "done"
    assert client.get(url).json == answered.json


def test_the_explanation_shown_is_the_active_models(
    settings, client, sessions, tiny_model, tiny_artifact
) -> None:
    """v1's explanation failed and is asked for again, in place, after v2 explained the review."""
    from sentiment_core.db import ExplanationStatus
    from sentiment_core.registry import activate_version
    from tests.conftest import add_model

    review_id = scored_review(sessions, "A wonderful film")
    url = f"/api/v1/reviews/{review_id}/explanation"
    second = add_model(settings, tiny_artifact, activate=False)
    with sessions() as session:
        session.add_all(
            [
                Explanation(
                    review_id=review_id, model_version=tiny_model, status=ExplanationStatus.failed
                ),
                Explanation(
                    review_id=review_id, model_version=second, status=ExplanationStatus.done
                ),
            ]
        )
        session.commit()
    assert client.get(url).json["model_version"] == tiny_model  # the active model's
    with sessions() as session:
        activate_version(session, second)
    assert client.get(url).json["model_version"] == second


def test_an_explanation_needs_a_scored_review(client, sessions, tiny_model) -> None:
    with sessions() as session:
        review = Review(text="waiting", status=ReviewStatus.queued)
        session.add(review)
        session.commit()
    refused = client.post(f"/api/v1/reviews/{review.id}/explanation")
    assert refused.status_code == 409 and refused.json["error"]["code"] == "not_scored"
    missing = client.post("/api/v1/reviews/99999/explanation")
    assert missing.status_code == 404 and missing.json["error"]["code"] == "not_found"
    assert client.get("/api/v1/reviews/99999/explanation").status_code == 404


def test_explanations_are_rate_limited_per_client(limited_client, sessions) -> None:
    ids = [scored_review(sessions) for _ in range(4)]
    statuses = [limited_client.post(f"/api/v1/reviews/{i}/explanation").status_code for i in ids]
    assert statuses == [202, 202, 202, 429]


def test_another_sites_page_cannot_make_its_visitors_ask_for_explanations(
    client, sessions, fake_redis, tiny_model
) -> None:
    url = f"/api/v1/reviews/{scored_review(sessions)}/explanation"
    for site in ("cross-site", "same-site"):
        refused = client.post(url, headers={"Sec-Fetch-Site": site})
        assert refused.status_code == 403 and refused.json["error"]["code"] == "cross_site"
    with sessions() as session:
        assert session.scalars(select(Explanation)).all() == []
    assert fake_redis.llen(EXPLANATION_QUEUE) == 0
    assert client.get(url, headers={"Sec-Fetch-Site": "cross-site"}).status_code == 404
    for origin in ("http://elsewhere.example", "null"):  # a browser that sends no Sec-Fetch-Site
        refused = client.post(url, headers={"Origin": origin})
        assert refused.status_code == 403 and refused.json["error"]["code"] == "cross_site"
    assert client.post(url, headers={"Sec-Fetch-Site": "same-origin"}).status_code == 202
    assert client.post(url, headers={"Origin": "http://localhost"}).status_code == 202
    assert client.post(url).status_code == 202  # a program: neither header
