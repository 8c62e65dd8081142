"""The label queue: the scored, unlabeled reviews whose label would teach the model most."""

from sentiment_core.db import Feedback, Review, ReviewStatus, Sentiment, utcnow


def add_scored(sessions, rows: list[tuple[float, int | None]], words: int = 40) -> list[int]:
    """Scored reviews of `words` words, one per (score, number of unknown words); returns their
    ids."""
    with sessions() as session:
        reviews = [
            Review(
                text=f"review {i}",
                status=ReviewStatus.done,
                score=score,
                sentiment=Sentiment.of(score),
                unknown_words=unknown,
                unknown_share=None if unknown is None else unknown / words,
                model_version="v1",
                scored_at=utcnow(),
            )
            for i, (score, unknown) in enumerate(rows)
        ]
        session.add_all(reviews)
        session.commit()
        return [review.id for review in reviews]


def test_the_queue_puts_unsure_scores_and_unknown_words_first(client, sessions) -> None:
    sure, unsure, new_words, labeled, old = add_scored(
        sessions, [(0.99, 0), (0.55, 0), (0.9, 12), (0.5, 0), (0.4, None)]
    )
    with sessions() as session:
        session.add(Review(text="waiting", status=ReviewStatus.queued))
        session.add(Feedback(review_id=labeled, label=Sentiment.positive, client="someone"))
        session.commit()
    body = client.get("/api/v1/label-queue").get_json()
    # priority: 1 - 2 |score - 0.5| plus a tenth per unknown word (none recorded counts as 0):
    # 0.2 + 1.2, 0.9, 0.8, 0.02
    assert [item["id"] for item in body["items"]] == [new_words, unsure, old, sure]
    first = body["items"][0]
    assert first["uncertainty"] == 1 - 2 * 0.4
    assert (first["unknown_words"], first["unknown_share"]) == (12, 12 / 40)
    assert first["text"] == "review 2" and first["status"] == "done"
    assert (body["items"][2]["unknown_words"], body["items"][2]["unknown_share"]) == (None, None)
    top = client.get("/api/v1/label-queue?per_page=2").get_json()["items"]
    assert [item["id"] for item in top] == [new_words, unsure]
    refused = client.get("/api/v1/label-queue?per_page=0")
    assert refused.status_code == 400 and refused.get_json()["error"]["code"] == "invalid_parameter"


def test_a_label_from_the_queue_is_ordinary_feedback(client, sessions) -> None:
    (review,) = add_scored(sessions, [(0.5, 0)])
    assert (
        client.post(f"/api/v1/reviews/{review}/feedback", json={"label": "negative"}).status_code
        == 201
    )
    assert client.get("/api/v1/label-queue").get_json()["items"] == []
    page = client.get("/label").get_data(as_text=True)
    assert "Nothing to label" in page


def test_the_label_page_lists_the_queue(client, sessions) -> None:
    sure, unsure = add_scored(sessions, [(0.99, 0), (0.52, 10)])
    page = client.get("/label").get_data(as_text=True)
    assert page.index(f'data-id="{unsure}"') < page.index(f'data-id="{sure}"')
    assert "10 of its words (25 %) are new to the model" in page
    assert "Keys:" in page and "label.js" in page


def test_a_candidate_in_shadow_that_disagrees_puts_a_review_first(client, sessions) -> None:
    agreed, disagreed = add_scored(sessions, [(0.55, 0), (0.9, 0)])
    with sessions() as session:
        session.get(Review, agreed).shadow_score = 0.6
        session.get(Review, disagreed).shadow_score = 0.2  # 0.2 + 1 for the disagreement
        session.commit()
    items = client.get("/api/v1/label-queue").get_json()["items"]
    assert [item["id"] for item in items] == [disagreed, agreed]
    assert not any("shadow" in key for item in items for key in item)


def test_the_queue_counts_unknown_words_rather_than_their_share(client, sessions) -> None:
    """A long review with many new words teaches more than a short one that is all new words."""
    (short,) = add_scored(sessions, [(0.9, 3)], words=3)
    (long,) = add_scored(sessions, [(0.9, 30)], words=300)
    items = client.get("/api/v1/label-queue").get_json()["items"]
    assert [(item["id"], item["unknown_share"]) for item in items] == [(long, 0.1), (short, 1.0)]
