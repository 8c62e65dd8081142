"""Server-rendered pages: submit a review, watch its result appear."""

from __future__ import annotations

from flask import Blueprint, abort, redirect, render_template, request, url_for

from core.settings import MAX_REVIEW_CHARS
from web.reviews import Rejected, clean_text, get_review, submit_reviews

pages = Blueprint("pages", __name__)


@pages.get("/")
def index():  # type: ignore[no-untyped-def]
    return render_template("index.html", max_chars=MAX_REVIEW_CHARS, text="", message=None)


@pages.post("/reviews")
def submit():  # type: ignore[no-untyped-def]
    raw = request.form.get("text", "")
    try:
        (review_id,) = submit_reviews([clean_text(raw, where="The review")])
    except Rejected as exc:
        page = render_template(
            "index.html", max_chars=MAX_REVIEW_CHARS, text=raw, message=exc.message
        )
        return page, exc.status
    return redirect(url_for("pages.show", review_id=review_id), code=303)


@pages.get("/reviews/<int:review_id>")
def show(review_id: int):  # type: ignore[no-untyped-def]
    review = get_review(review_id)
    if review is None:
        abort(404, f"There is no review {review_id}.")
    return render_template("review.html", review=review)
