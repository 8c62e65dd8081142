"""The label queue: the scored, unlabeled reviews whose label would teach the model most."""

from sentiment_core.db import Feedback, Review, ReviewStatus, Sentiment
from sentiment_core.labeling import held_out
from tests.factories import add_scored


def test_the_queue_puts_unsure_scores_and_recurring_new_words_first(
    client, sessions, settings
) -> None:
    sure, recurring, unsure, labeled, typo, old, again = add_scored(
        sessions,
        [
            (0.99, ""),
            (0.9, "taergo"),
            (0.55, ""),
            (0.5, ""),
            (0.9, "blorft"),
            (0.4, None),
            (0.95, "taergo"),
        ],
    )
    with sessions() as session:
        session.add(Review(text="waiting", status=ReviewStatus.queued))
        session.add(Feedback(review_id=labeled, label=Sentiment.positive, client="someone"))
        session.commit()
    assert not held_out(recurring, settings.feedback_holdout)
    body = client.get("/api/v1/label-queue").get_json()
    # 1 - 2 |score - 0.5|, plus each new word's share of the 7 scored reviews, in percent, over
    # one more than its labels: 0.2 + 2/7 * 100, then 0.2 + 1/7 * 100 for the typo and
    # 0.1 + 2/7 * 100 / 2 for the second taergo (a run would learn from the first), 0.9, 0.8,
    # 0.02
    assert [item["id"] for item in body["items"]] == [recurring, typo, again, unsure, old, sure]
    first = body["items"][0]
    assert first["uncertainty"] == 1 - 2 * 0.4
    assert (first["unknown_words"], first["unknown_share"], first["new_words"]) == (
        1,
        1 / 40,
        ["taergo"],
    )
    assert first["text"] == "review 1" and first["status"] == "done"
    assert [body["items"][4][key] for key in ("unknown_words", "unknown_share", "new_words")] == [
        None,
        None,
        None,
    ]
    top = client.get("/api/v1/label-queue?per_page=2").get_json()["items"]
    assert [item["id"] for item in top] == [recurring, typo]
    second = client.get("/api/v1/label-queue?per_page=1&page=2").get_json()["items"]
    assert [item["id"] for item in second] == [typo]
    assert [item["id"] for item in body["items"]] == [
        item["id"]
        for page in (1, 2, 3)
        for item in client.get(f"/api/v1/label-queue?per_page=2&page={page}").get_json()["items"]
    ]
    refused = client.get("/api/v1/label-queue?per_page=0")
    assert refused.status_code == 400 and refused.get_json()["error"]["code"] == "invalid_parameter"


def test_a_label_from_the_queue_is_ordinary_feedback(client, sessions) -> None:
    (review,) = add_scored(sessions, [(0.5, "")])
    assert (
        client.post(f"/api/v1/reviews/{review}/feedback", json={"label": "negative"}).status_code
        == 201
    )
    assert client.get("/api/v1/label-queue").get_json()["items"] == []
    page = client.get("/label").get_data(as_text=True)
    assert "Nothing to label" in page


def test_the_label_page_lists_the_queue(client, sessions) -> None:
    sure, unsure = add_scored(sessions, [(0.99, ""), (0.52, "taergo dooga")])
    page = client.get("/label").get_data(as_text=True)
    assert page.index(f'data-id="{unsure}"') < page.index(f'data-id="{sure}"')
    assert "2 of its words (5 %) are new to the model: taergo, dooga." in page
    assert "Keys:" in page and "label.js" in page


def test_a_candidate_in_shadow_that_disagrees_puts_a_review_first(client, sessions) -> None:
    agreed, disagreed = add_scored(sessions, [(0.55, ""), (0.9, "")])
    with sessions() as session:
        session.get(Review, agreed).shadow_score = 0.6
        session.get(Review, disagreed).shadow_score = 0.2  # 0.2 + 1 for the disagreement
        session.commit()
    items = client.get("/api/v1/label-queue").get_json()["items"]
    assert [item["id"] for item in items] == [disagreed, agreed]
    assert not any("shadow" in key for item in items for key in item)
