from sqlalchemy import select

from core.db import Review


def test_the_form_submits_and_redirects_to_the_result_page(client, sessions, tiny_model) -> None:
    assert b'<form method="post"' in client.get("/").data
    response = client.post("/reviews", data={"text": "What a film!"})
    assert response.status_code == 303
    with sessions() as session:
        (review,) = session.scalars(select(Review))
    assert response.headers["Location"] == f"/reviews/{review.id}"
    page = client.get(response.headers["Location"]).get_data(as_text=True)
    assert "What a film!" in page and f"/api/v1/reviews/{review.id}" in page
    assert 'id="status">queued<' in page


def test_an_empty_form_shows_a_readable_message(client, sessions, tiny_model) -> None:
    response = client.post("/reviews", data={"text": "   "})
    assert response.status_code == 422
    assert "The review is empty" in response.get_data(as_text=True)
    with sessions() as session:
        assert session.scalars(select(Review)).all() == []


def test_review_text_is_shown_escaped(client, tiny_model) -> None:
    response = client.post("/reviews", data={"text": "<script>alert(1)</script>"})
    page = client.get(response.headers["Location"]).get_data(as_text=True)
    assert "<script>alert(1)</script>" not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page


def test_unknown_review_page_is_404(client) -> None:
    response = client.get("/reviews/12345")
    assert response.status_code == 404
    assert "There is no review 12345." in response.get_data(as_text=True)
