"""Server-rendered pages: submit, watch the result, give feedback, history, models, dashboard."""

from __future__ import annotations

from pathlib import Path

from flask import (
    Blueprint,
    flash,
    redirect,
    render_template,
    request,
    send_from_directory,
    url_for,
)
from sqlalchemy import select

from sentiment_core.db import ReviewStatus, Sentiment, TrainingRun
from sentiment_core.registry import get_version, list_versions, previous_version
from sentiment_core.settings import MAX_BATCH_REVIEWS, MAX_REVIEW_CHARS
from web.admin import activate_model, check_admin, rollback_model, start_retraining
from web.limits import client_id, feedback_limit, submit_limit
from web.reviews import (
    Rejected,
    clean_text,
    clean_texts,
    client_feedback,
    get_review,
    list_reviews,
    parse_choice,
    parse_page,
    parse_submission,
    record_feedback,
    sessions,
    submit_reviews,
)
from web.stats import collect_stats
from web.uploads import texts_from_file, texts_from_lines

pages = Blueprint("pages", __name__)

REPORT_PLOTS = {
    "curves.png": "Accuracy and loss per epoch",
    "confusion_matrix.png": "Confusion matrix on the test set",
    "roc.png": "ROC curve on the test set",
    "eda.png": "Exploratory analysis of the training data",
}
RUNS_SHOWN = 20  # retraining runs listed on the models page
OPPOSITE = {Sentiment.positive: Sentiment.negative, Sentiment.negative: Sentiment.positive}


def submit_form(message: str | None = None, status: int = 200, **fields: str):
    page = render_template(
        "index.html",
        max_chars=MAX_REVIEW_CHARS,
        max_reviews=MAX_BATCH_REVIEWS,
        text=fields.get("text", ""),
        lines=fields.get("lines", ""),
        message=message,
    )
    return page, status


@pages.get("/")
def index():
    return submit_form()


@pages.post("/reviews")
@submit_limit
def submit():
    raw = request.form.get("text", "")
    try:
        submission = submit_reviews([clean_text(raw, where="The review")])
    except Rejected as exc:
        return submit_form(exc.message, exc.status, text=raw)
    return redirect(url_for("pages.show", review_id=submission.review_ids[0]), code=303)


@pages.post("/reviews/batch")
@submit_limit
def submit_many():
    pasted = request.form.get("lines", "")
    upload = request.files.get("file")
    try:
        texts: list[object] = list(texts_from_lines(pasted))
        if upload and upload.filename:
            texts += texts_from_file(upload.filename, upload.read())
        submission = submit_reviews(clean_texts(texts, where="Reviews"))
    except Rejected as exc:
        return submit_form(exc.message, exc.status, lines=pasted)
    flash(f"{len(submission.review_ids)} reviews queued.")
    return redirect(url_for("pages.history", submission=submission.id), code=303)


@pages.get("/reviews/<int:review_id>")
def show(review_id: int):
    review = get_review(review_id)
    if review is None:
        raise Rejected(404, "not_found", f"There is no review {review_id}.")
    feedback = client_feedback(review_id, client_id())
    return render_template("review.html", review=review, feedback=feedback)


@pages.post("/reviews/<int:review_id>/feedback")
@feedback_limit
def feedback(review_id: int):
    review = get_review(review_id)
    if review is None:
        raise Rejected(404, "not_found", f"There is no review {review_id}.")
    verdict = request.form.get("verdict")
    if verdict not in {"right", "wrong"} or review.sentiment is None:
        raise Rejected(400, "invalid_feedback", "Feedback is right or wrong, on a scored review.")
    label = review.sentiment if verdict == "right" else OPPOSITE[review.sentiment]
    record_feedback(review_id, label, client_id())
    flash(f"Thanks: recorded that this review is {label.value}.")
    return redirect(url_for("pages.show", review_id=review_id), code=303)


@pages.get("/history")
def history():
    args = request.args
    page, per_page = parse_page(args.get("page"), args.get("per_page"), default=25)
    filters = {
        # The filter form sends an empty value for "any".
        "status": parse_choice(args.get("status") or None, ReviewStatus, "status"),
        "sentiment": parse_choice(args.get("sentiment") or None, Sentiment, "sentiment"),
        "submission": parse_submission(args.get("submission")),
    }
    found = list_reviews(page=page, per_page=per_page, **filters)
    pending = any(r.status in (ReviewStatus.queued, ReviewStatus.scoring) for r in found.items)
    shown = {k: v.value if hasattr(v, "value") else v for k, v in filters.items() if v}
    return render_template(
        "history.html",
        found=found,
        filters=shown,
        statuses=[s.value for s in ReviewStatus],
        sentiments=[s.value for s in Sentiment],
        refresh=pending,
    )


@pages.get("/models")
def models():
    with sessions() as session:
        rows = list_versions(session)
        previous = previous_version(session)
        runs = list(
            session.scalars(select(TrainingRun).order_by(TrainingRun.id.desc()).limit(RUNS_SHOWN))
        )
    plots = {
        row.version: [
            (name, title)
            for name, title in REPORT_PLOTS.items()
            if (Path(row.artifact_path) / "report" / name).is_file()
        ]
        for row in rows
    }
    return render_template("models.html", rows=rows, plots=plots, previous=previous, runs=runs)


@pages.get("/models/<version:version>/report/<name>")
def report_file(version: str, name: str):
    with sessions() as session:
        row = get_version(session, version)
    if row is None or name not in REPORT_PLOTS:
        raise Rejected(404, "not_found", "There is no such report.")
    return send_from_directory(Path(row.artifact_path) / "report", name)


@pages.post("/models/<version:version>/activate")
def activate(version: str):
    return admin_action(lambda: activate_model(version))


@pages.post("/models/rollback")
def rollback():
    return admin_action(rollback_model)


@pages.post("/models/retrain")
def retrain():
    return admin_action(start_retraining, "Retraining is queued; its run appears below.")


def admin_action(action, done: str = "Version {row.version} is now active."):
    try:
        check_admin(request.form.get("token"))
        row = action()
    except Rejected as exc:
        flash(exc.message[0].upper() + exc.message[1:] + ".", "error")
    else:
        flash(done.format(row=row))
    return redirect(url_for("pages.models"), code=303)


@pages.get("/dashboard")
def dashboard():
    return render_template("dashboard.html", stats=collect_stats())
