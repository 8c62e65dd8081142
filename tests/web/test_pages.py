import re

import pytest
from sqlalchemy import select, update

from sentiment_core.db import Feedback, Review, ReviewStatus, Sentiment, utcnow
from tests.conftest import ADMIN_TOKEN, add_model


def csrf(client, url: str = "/") -> str:
    page = client.get(url).get_data(as_text=True)
    return re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)


def stored(sessions) -> list[Review]:
    with sessions() as session:
        return list(session.scalars(select(Review).order_by(Review.id)))


def scored_review(sessions, text: str = "fine", sentiment=Sentiment.positive) -> int:
    with sessions() as session:
        review = Review(
            text=text,
            status=ReviewStatus.done,
            sentiment=sentiment,
            score=0.8 if sentiment is Sentiment.positive else 0.2,
            model_version="v1",
            scored_at=utcnow(),
        )
        session.add(review)
        session.commit()
        return review.id


def test_the_form_submits_and_redirects_to_the_result_page(client, sessions, tiny_model) -> None:
    response = client.post("/reviews", data={"text": "What a film!", "csrf_token": csrf(client)})
    assert response.status_code == 303
    (review,) = stored(sessions)
    assert response.headers["Location"] == f"/reviews/{review.id}"
    page = client.get(response.headers["Location"]).get_data(as_text=True)
    assert "What a film!" in page and f"/api/v1/reviews/{review.id}" in page
    assert 'id="status">queued<' in page
    assert re.search(r'<form id="feedback"[^>]*\shidden>', page)


def test_a_form_without_its_csrf_token_is_refused(client, sessions, tiny_model) -> None:
    response = client.post("/reviews", data={"text": "What a film!"})
    assert response.status_code == 400
    assert "reload the page and try again" in response.get_data(as_text=True)
    assert stored(sessions) == []


def test_an_empty_form_shows_a_readable_message(client, sessions, tiny_model) -> None:
    response = client.post("/reviews", data={"text": "   ", "csrf_token": csrf(client)})
    assert response.status_code == 422
    assert "The review is empty" in response.get_data(as_text=True)
    assert stored(sessions) == []


def test_many_pasted_reviews_are_queued_together(client, sessions, tiny_model) -> None:
    pasted = "good film\u2028still good\r\n\n  bad film  \nfine film\n"  # U+2028 is no line end
    response = client.post("/reviews/batch", data={"lines": pasted, "csrf_token": csrf(client)})
    assert response.status_code == 303
    reviews = stored(sessions)
    assert [r.text for r in reviews] == ["good film\u2028still good", "bad film", "fine film"]
    assert len({r.submission for r in reviews}) == 1
    assert response.headers["Location"] == f"/history?submission={reviews[0].submission}"
    page = client.get(response.headers["Location"]).get_data(as_text=True)
    assert "3 reviews queued." in page and "3 reviews in this submission" in page
    # The page follows the submission's event stream instead of reloading itself.
    assert f'data-events="/api/v1/submissions/{reviews[0].submission}/events"' in page
    assert "history.js" in page and '<meta http-equiv="refresh"' not in page
    everything = client.get("/history").get_data(as_text=True)  # no one stream to follow
    assert '<meta http-equiv="refresh"' in everything and "data-events" not in everything
    with sessions() as session:
        session.execute(update(Review).values(status=ReviewStatus.failed, error="broken"))
        session.commit()
    for url in (response.headers["Location"], "/history"):
        finished = client.get(url).get_data(as_text=True)
        assert "data-events" not in finished and 'http-equiv="refresh"' not in finished


@pytest.mark.parametrize(
    ("filename", "content"),
    [
        ("reviews.csv", 'id,text\n1,"good, really good"\n2,"bad ""film"""\n'),
        ("reviews.csv", 'review,label\n"good, really good",1\n"bad ""film""",0\n'),
        ("reviews.jsonl", '{"text": "good, really good"}\n\n{"text": "bad \\"film\\""}\n'),
        ("reviews.jsonl", '{"text": "good,\u2028really good"}\r\n{"text": "bad \\"film\\""}\n'),
    ],
)
def test_a_file_of_reviews_is_queued(client, sessions, tiny_model, filename, content) -> None:
    import io

    data = {"csrf_token": csrf(client), "file": (io.BytesIO(content.encode()), filename)}
    response = client.post("/reviews/batch", data=data, content_type="multipart/form-data")
    assert response.status_code == 303
    first = "good, really good" if "\u2028" not in content else "good,\u2028really good"
    assert [r.text for r in stored(sessions)] == [first, 'bad "film"']


@pytest.mark.parametrize(
    ("filename", "content", "message"),
    [
        ("reviews.txt", b"good", "upload a .csv or a .jsonl file"),
        ("reviews.csv", b"id,stars\n1,5\n", "needs a &#39;text&#39; or &#39;review&#39; column"),
        ("reviews.jsonl", b'{"text": "ok"}\nnot json\n', "line 2 is not JSON"),
        ("reviews.jsonl", b'{"body": "ok"}\n', "line 1 must be an object with a &#34;text&#34;"),
        ("reviews.csv", b"text\n\xff\xfe\n", "is not UTF-8 text"),
        ("reviews.csv", b"text\n", "there are no reviews to score"),
        ("reviews.csv", b'text\n"ok"\n""\n', "Reviews[1] is empty"),
    ],
)
def test_a_bad_file_gets_a_readable_message_and_stores_nothing(
    client, sessions, tiny_model, filename, content, message
) -> None:
    import io

    data = {"csrf_token": csrf(client), "file": (io.BytesIO(content), filename)}
    response = client.post("/reviews/batch", data=data, content_type="multipart/form-data")
    assert 400 <= response.status_code < 500
    assert message in response.get_data(as_text=True)
    assert stored(sessions) == []


def test_a_scored_review_shows_its_bar_and_takes_feedback(client, sessions) -> None:
    review_id = scored_review(sessions)
    page = client.get(f"/reviews/{review_id}").get_data(as_text=True)
    assert 'style="width: 80.0%"' in page and ">positive<" in page
    assert re.search(r'<form id="feedback"[^>]*>', page).group(0).find("hidden") == -1
    token = csrf(client, f"/reviews/{review_id}")
    response = client.post(
        f"/reviews/{review_id}/feedback", data={"verdict": "wrong", "csrf_token": token}
    )
    assert response.status_code == 303
    page = client.get(response.headers["Location"]).get_data(as_text=True)
    assert "recorded that this review is negative" in page
    assert "You said it is negative." in page
    client.post(f"/reviews/{review_id}/feedback", data={"verdict": "right", "csrf_token": token})
    with sessions() as session:
        (feedback,) = session.scalars(select(Feedback))
    assert feedback.label is Sentiment.positive


def test_the_why_control_is_shown_once_the_review_is_done(client, sessions, tiny_model) -> None:
    client.post("/reviews", data={"text": "What a film!", "csrf_token": csrf(client)})
    (queued,) = stored(sessions)
    for review_id, hidden in ((queued.id, True), (scored_review(sessions), False)):
        page = client.get(f"/reviews/{review_id}").get_data(as_text=True)
        why = re.search(r'<section id="why"[^>]*>', page).group(0)
        assert f'data-url="/api/v1/reviews/{review_id}/explanation"' in why
        assert why.endswith("hidden>") is hidden
        assert '<button type="button" id="why-button">Why?</button>' in page


def test_feedback_on_an_unscored_review_is_refused(client, sessions, tiny_model) -> None:
    client.post("/reviews", data={"text": "x", "csrf_token": csrf(client)})
    (review,) = stored(sessions)
    response = client.post(
        f"/reviews/{review.id}/feedback", data={"verdict": "wrong", "csrf_token": csrf(client)}
    )
    assert response.status_code == 400
    assert "on a scored review" in response.get_data(as_text=True)


def test_review_text_is_shown_escaped_everywhere(client, sessions) -> None:
    review_id = scored_review(sessions, text="<script>alert(1)</script>")
    for url in (f"/reviews/{review_id}", "/history"):
        page = client.get(url).get_data(as_text=True)
        assert "<script>alert(1)</script>" not in page
        assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page


def test_history_filters_and_paginates(client, sessions) -> None:
    ids = [scored_review(sessions, f"good {i}") for i in range(30)]
    ids += [scored_review(sessions, "bad", Sentiment.negative)]
    first = client.get("/history").get_data(as_text=True)
    assert "31 reviews." in first and "page 1 of 2" in first
    assert f'href="/reviews/{ids[-1]}"' in first and f'href="/reviews/{ids[0]}"' not in first
    second = client.get("/history?page=2").get_data(as_text=True)
    assert f'href="/reviews/{ids[0]}"' in second
    ten = client.get("/history?per_page=10&sentiment=positive").get_data(as_text=True)
    older = re.search(r'rel="next" href="([^"]+)"', ten).group(1).replace("&amp;", "&")
    assert sorted(older.split("?")[1].split("&")) == ["page=2", "per_page=10", "sentiment=positive"]
    assert '<input type="hidden" name="per_page" value="10">' in ten
    negative = client.get("/history?sentiment=negative").get_data(as_text=True)
    assert "1 review." in negative and "bad" in negative
    assert client.get("/history?status=failed").get_data(as_text=True).count("No reviews yet") == 1
    bad = client.get("/history?status=lost")
    assert bad.status_code == 400 and "status must be one of" in bad.get_data(as_text=True)


def test_the_models_page_shows_versions_reports_and_admin_actions(
    client, settings, tiny_artifact, tiny_model
) -> None:
    second = add_model(settings, tiny_artifact, activate=False)
    page = client.get("/models").get_data(as_text=True)
    assert f'id="model-{tiny_model}"' in page and f'id="model-{second}"' in page
    assert "active since" in page and f"Activate {second}" in page
    plot = f"/models/{tiny_model}/report/curves.png"
    assert plot in page
    with client.get(plot) as image:
        assert image.status_code == 200 and image.data.startswith(b"\x89PNG")
    assert client.get(f"/models/{tiny_model}/report/metrics.json").status_code == 404
    assert client.get(f"/models/{tiny_model}/report/..%2Fmodel.keras").status_code == 404

    token = csrf(client, "/models")
    refused = client.post(
        f"/models/{second}/activate", data={"token": "wrong", "csrf_token": token}
    )
    assert refused.status_code == 303
    assert "A valid admin token is required." in client.get("/models").get_data(as_text=True)
    client.post(f"/models/{second}/activate", data={"token": ADMIN_TOKEN, "csrf_token": token})
    page = client.get("/models").get_data(as_text=True)
    assert f"Version {second} is now active." in page and f"Roll back to {tiny_model}" in page
    client.post("/models/rollback", data={"token": ADMIN_TOKEN, "csrf_token": token})
    assert f"Version {tiny_model} is now active." in client.get("/models").get_data(as_text=True)


def test_the_dashboard_shows_throughput_latency_and_feedback(client, sessions, tiny_model):
    ids = [scored_review(sessions) for _ in range(4)]
    with sessions() as session:
        for review_id in ids:
            session.get(Review, review_id).model_version = tiny_model
        session.add_all(
            [
                Feedback(review_id=ids[0], label=Sentiment.positive, client="a"),
                Feedback(review_id=ids[1], label=Sentiment.positive, client="a"),
                Feedback(review_id=ids[2], label=Sentiment.negative, client="a"),
            ]
        )
        session.commit()
    stats = client.get("/api/v1/stats").json
    assert stats["reviews"]["done"] == 4 and stats["scored_per_minute"] == 0.4
    assert stats["feedback"] == {"total": 3, "right": 2, "wrong": 1}
    assert stats["active_model"]["feedback_accuracy"] == pytest.approx(2 / 3)
    assert stats["average_batch_size"] == 1.0 and stats["latency_seconds"]["p50"] is not None
    page = client.get("/dashboard").get_data(as_text=True)
    assert 'id="feedback-accuracy">66.7%' in page and 'id="per-minute">0.4<' in page


def test_unknown_review_page_is_404(client) -> None:
    response = client.get("/reviews/12345")
    assert response.status_code == 404
    assert "There is no review 12345." in response.get_data(as_text=True)


def test_retraining_is_started_from_the_models_page(client, fake_redis, tiny_model) -> None:
    from sentiment_core.queue import TRAINING_QUEUE

    token = csrf(client, "/models")
    client.post("/models/retrain", data={"token": "nope", "csrf_token": token})
    assert fake_redis.llen(TRAINING_QUEUE) == 0
    response = client.post("/models/retrain", data={"token": ADMIN_TOKEN, "csrf_token": token})
    assert response.status_code == 303 and fake_redis.llen(TRAINING_QUEUE) == 1
    assert "Retraining is queued" in client.get("/models").get_data(as_text=True)
