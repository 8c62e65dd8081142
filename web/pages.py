"""Server-rendered pages: submit, watch the result, give feedback, history, models, dashboard.

Each view calls the operations (sentiment_core/operations.py); a refusal it does not show on
its own page is answered by web/app.py's error handler."""

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

from sentiment_core.db import ReviewStatus, RunStatus, Sentiment, TrainingRun
from sentiment_core.errors import Invalid, NotFound, OperationError
from sentiment_core.finished import FINISHED
from sentiment_core.inputs import (
    clean_text,
    clean_texts,
    parse_choice,
    parse_page,
    parse_submission,
)
from sentiment_core.labeling import label_queue
from sentiment_core.operations import (
    activate_model,
    client_feedback,
    end_shadow,
    find_review,
    list_reviews,
    record_feedback,
    rollback_model,
    start_retraining,
    submit_reviews,
)
from sentiment_core.registry import get_version, list_versions, previous_version
from sentiment_core.runs import shadow_figures
from sentiment_core.settings import MAX_BATCH_REVIEWS, MAX_REVIEW_CHARS
from web.admin import check_admin
from web.errors import hold_retry_after, status_of
from web.limits import client_id, feedback_limit, submit_limit
from web.services import get_services
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
LABEL_BATCH = 20  # reviews the label page holds before it asks for more
OPPOSITE = {Sentiment.positive: Sentiment.negative, Sentiment.negative: Sentiment.positive}


def submit_form(refusal: OperationError | None = None, **fields: str):
    """The submission page, with the refusal of what was sent, and what was sent to correct."""
    page = render_template(
        "index.html",
        max_chars=MAX_REVIEW_CHARS,
        max_reviews=MAX_BATCH_REVIEWS,
        text=fields.get("text", ""),
        lines=fields.get("lines", ""),
        message=refusal.message if refusal else None,
    )
    if refusal is None:
        return page
    hold_retry_after(refusal)
    return page, status_of(refusal)


@pages.get("/")
def index():
    return submit_form()


@pages.post("/reviews")
@submit_limit
def submit():
    raw = request.form.get("text", "")
    services = get_services()
    try:
        texts = [clean_text(raw, where="The review")]
        submission = submit_reviews(
            sessions=services.sessions,
            celery=services.celery,
            backlog=services.backlog,
            texts=texts,
        )
    except OperationError as exc:
        return submit_form(exc, text=raw)
    return redirect(url_for("pages.show", review_id=submission.review_ids[0]), code=303)


@pages.post("/reviews/batch")
@submit_limit
def submit_many():
    pasted = request.form.get("lines", "")
    upload = request.files.get("file")
    services = get_services()
    try:
        texts: list[object] = list(texts_from_lines(pasted))
        if upload and upload.filename:
            texts += texts_from_file(upload.filename, upload.read())
        cleaned = clean_texts(texts, where="Reviews")
        submission = submit_reviews(
            sessions=services.sessions,
            celery=services.celery,
            backlog=services.backlog,
            texts=cleaned,
        )
    except OperationError as exc:
        return submit_form(exc, lines=pasted)
    flash(f"{len(submission.review_ids)} reviews queued.")
    return redirect(url_for("pages.history", submission=submission.id), code=303)


@pages.get("/reviews/<int:review_id>")
def show(review_id: int):
    sessions = get_services().sessions
    review = find_review(sessions=sessions, review_id=review_id)
    if review is None:
        raise NotFound("not_found", f"There is no review {review_id}.")
    feedback = client_feedback(sessions=sessions, review_id=review_id, client=client_id())
    return render_template("review.html", review=review, feedback=feedback)


@pages.post("/reviews/<int:review_id>/feedback")
@feedback_limit
def feedback(review_id: int):
    sessions = get_services().sessions
    review = find_review(sessions=sessions, review_id=review_id)
    if review is None:
        raise NotFound("not_found", f"There is no review {review_id}.")
    verdict = request.form.get("verdict")
    if verdict not in {"right", "wrong"} or review.sentiment is None:
        raise Invalid("invalid_feedback", "Feedback is right or wrong, on a scored review.")
    label = review.sentiment if verdict == "right" else OPPOSITE[review.sentiment]
    record_feedback(sessions=sessions, review_id=review_id, label=label, client=client_id())
    flash(f"Thanks: recorded that this review is {label.value}.")
    return redirect(url_for("pages.show", review_id=review_id), code=303)


@pages.get("/label")
def label():
    services = get_services()
    items = label_queue(
        sessions=services.sessions, limit=LABEL_BATCH, holdout=services.settings.feedback_holdout
    )
    return render_template("label.html", items=items, per_page=LABEL_BATCH)


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
    found = list_reviews(sessions=get_services().sessions, page=page, per_page=per_page, **filters)
    pending = any(r.status not in FINISHED for r in found.items)
    shown = {k: v.value if hasattr(v, "value") else v for k, v in filters.items() if v}
    paging = {"per_page": per_page} if args.get("per_page") else {}  # kept by the links and form
    # A submission's page follows its event stream; the whole history reloads itself instead.
    submission = filters["submission"]
    following = pending and submission is not None
    return render_template(
        "history.html",
        found=found,
        filters=shown,
        paging=paging,
        links=shown | paging,
        statuses=[s.value for s in ReviewStatus],
        sentiments=[s.value for s in Sentiment],
        events=url_for("api.stream_submission", submission=submission) if following else None,
        refresh=pending and not following,
    )


@pages.get("/models")
def models():
    with get_services().sessions() as session:
        rows = list_versions(session)
        previous = previous_version(session)
        runs = list(
            session.scalars(select(TrainingRun).order_by(TrainingRun.id.desc()).limit(RUNS_SHOWN))
        )
        shadow = {
            run.id: shadow_figures(session, run).as_dict()
            for run in runs
            if run.status == RunStatus.shadow
        }
    plots = {
        row.version: [
            (name, title)
            for name, title in REPORT_PLOTS.items()
            if (Path(row.artifact_path) / "report" / name).is_file()
        ]
        for row in rows
    }
    return render_template(
        "models.html", rows=rows, plots=plots, previous=previous, runs=runs, shadow=shadow
    )


@pages.get("/models/<version:version>/report/<name>")
def report_file(version: str, name: str):
    with get_services().sessions() as session:
        row = get_version(session, version)
    if row is None or name not in REPORT_PLOTS:
        raise NotFound("not_found", "There is no such report.")
    return send_from_directory(Path(row.artifact_path) / "report", name)


@pages.post("/models/<version:version>/activate")
def activate(version: str):
    return admin_action(lambda: activate_model(sessions=get_services().sessions, version=version))


@pages.post("/models/rollback")
def rollback():
    return admin_action(lambda: rollback_model(sessions=get_services().sessions))


@pages.post("/runs/<int:run_id>/shadow/<any(promote, reject):decision>")
def decide_shadow(run_id: int, decision: str):
    sessions = get_services().sessions
    return admin_action(
        lambda: end_shadow(sessions=sessions, run_id=run_id, promote=decision == "promote"),
        "Run {row.id} is {row.status.value}.",
    )


@pages.post("/models/retrain")
def retrain():
    services = get_services()
    return admin_action(
        lambda: start_retraining(
            sessions=services.sessions, celery=services.celery, redis=services.redis
        ),
        "Retraining is queued; its run appears below.",
    )


def admin_action(action, done: str = "Version {row.version} is now active."):
    try:
        check_admin(request.form.get("token"))
        row = action()
    except OperationError as exc:
        flash(exc.message[0].upper() + exc.message[1:] + ".", "error")
    else:
        flash(done.format(row=row))
    return redirect(url_for("pages.models"), code=303)


@pages.get("/dashboard")
def dashboard():
    return render_template("dashboard.html", stats=collect_stats())
