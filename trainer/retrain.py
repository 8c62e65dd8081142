"""Retraining on users' feedback, and the gate a candidate must pass to go live.

A run takes the IMDb training reviews and every labeled review, keeps a fixed IMDb slice and a
stable share of the feedback out of training, trains a candidate (continuing from the active
model, or from scratch when the vocabulary must grow), scores both models on the same held-out
data, and promotes the candidate only when it is better on held-out feedback and not worse than
`gate_max_imdb_drop` on the IMDb slice.
"""

from __future__ import annotations

import hashlib
import logging
import random
import shutil
import time
from collections import Counter, defaultdict
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from sentiment_core.db import (
    Feedback,
    ModelVersion,
    Review,
    RunMode,
    RunStatus,
    RunTrigger,
    Sentiment,
    TrainingRun,
    as_utc,
    make_engine,
    make_sessionmaker,
    utcnow,
)
from sentiment_core.registry import (
    PREPROCESSOR_FILE,
    activate_version,
    active_version,
    register_version,
)
from sentiment_core.runs import running_run
from sentiment_core.settings import Settings
from sentiment_core.text import Preprocessor, tokenize
from sentiment_inference.scoring import Scorer
from trainer.data import Dataset, Split, load_dataset, resolve_data
from trainer.evaluation import classification_metrics
from trainer.train import DEFAULT_SEED, TrainRequest, staging_dir, train_into, with_pretrained

log = logging.getLogger(__name__)

FINE_TUNE_EPOCHS = 3
FINE_TUNE_LEARNING_RATE = 3e-4  # a third of Adam's default: adjust the model, don't restart it
# A word outside the vocabulary in this share of the labeled reviews (and at least 3) grows it;
# rarer ones (numbers, names, typos) are what any vocabulary leaves out.
NEW_WORD_MIN_SHARE = 0.01


class RunInProgress(RuntimeError):
    pass


@dataclass(frozen=True)
class Labeled:
    review_id: int
    text: str
    label: int  # 1 positive, 0 negative


@dataclass(frozen=True)
class Verdict:
    promote: bool
    reason: str


def collect_feedback(session: Session) -> tuple[list[Labeled], int]:
    """Every labeled review once, labeled by the majority of its clients; ties are dropped.

    Returns the labeled reviews and how many were dropped as ties.
    """
    votes: dict[int, Counter[Sentiment]] = defaultdict(Counter)
    texts: dict[int, str] = {}
    query = select(Feedback.review_id, Review.text, Feedback.label).join(
        Review, Feedback.review_id == Review.id
    )
    for review_id, text, label in session.execute(query):
        votes[review_id][label] += 1
        texts[review_id] = text
    labeled, ties = [], 0
    for review_id in sorted(votes):
        positive, negative = (
            votes[review_id][Sentiment.positive],
            votes[review_id][Sentiment.negative],
        )
        if positive == negative:
            ties += 1
        else:
            labeled.append(Labeled(review_id, texts[review_id], int(positive > negative)))
    return labeled, ties


def held_out(review_id: int, share: float) -> bool:
    """Whether a labeled review belongs to the gate's held-out feedback; stable across runs."""
    digest = hashlib.sha256(f"review-{review_id}".encode()).digest()
    return int.from_bytes(digest[:4], "big") / 2**32 < share


def cap_share(items: list, others: int, max_share: float, seed: int = DEFAULT_SEED) -> list:
    """At most `max_share` of a training set that also holds `others` examples."""
    limit = int(max_share / (1 - max_share) * others) if max_share < 1 else len(items)
    return items if len(items) <= limit else random.Random(seed).sample(items, limit)


def choose_mode(preprocessor: Preprocessor, texts: list[str]) -> tuple[RunMode, str]:
    """Fine-tune the active model, unless the feedback leans on words its vocabulary lacks."""
    unknown = Counter(
        word for text in texts for word in set(tokenize(text)) if not preprocessor.knows(word)
    )
    needed = max(3, int(NEW_WORD_MIN_SHARE * len(texts)))
    new_words = sorted(w for w, n in unknown.items() if n >= needed)
    if new_words:
        shown = ", ".join(new_words[:8]) + (", …" if len(new_words) > 8 else "")
        return RunMode.scratch, (
            f"{len(new_words)} words in at least {needed} labeled reviews are "
            f"outside the active vocabulary ({shown}); a fine-tuned model could not see them, "
            "so the vocabulary is refitted and the model trained from scratch"
        )
    return RunMode.fine_tune, (
        "the active vocabulary covers the feedback, so training continues from the active model "
        f"({FINE_TUNE_EPOCHS} epochs at learning rate {FINE_TUNE_LEARNING_RATE})"
    )


def judge(candidate: dict, active: dict, settings: Settings) -> Verdict:
    """The promotion gate over both models' accuracy on the same held-out data."""
    c_fb, a_fb = candidate["feedback_accuracy"], active["feedback_accuracy"]
    c_imdb, a_imdb = candidate["imdb_accuracy"], active["imdb_accuracy"]
    if c_fb is None:
        return Verdict(False, "no held-out feedback to judge the candidate on")
    if c_fb - a_fb <= settings.gate_min_gain:
        return Verdict(False, f"not better on held-out feedback: {c_fb:.3f} vs {a_fb:.3f}")
    drop = a_imdb - c_imdb
    if drop > settings.gate_max_imdb_drop:
        return Verdict(
            False,
            f"IMDb held-out accuracy fell {100 * drop:.1f} points ({c_imdb:.3f} vs {a_imdb:.3f}); "
            f"the limit is {100 * settings.gate_max_imdb_drop:.1f}",
        )
    return Verdict(
        True,
        f"better on held-out feedback ({c_fb:.3f} vs {a_fb:.3f}) and within "
        f"{100 * settings.gate_max_imdb_drop:.1f} points on IMDb held-out "
        f"({c_imdb:.3f} vs {a_imdb:.3f})",
    )


def accuracy(scorer: Scorer, split: Split) -> float | None:
    if not split.texts:
        return None
    return classification_metrics(split.labels, scorer.score(split.texts))["accuracy"]


def feedback_since(session: Session, moment: datetime) -> int:
    return session.scalar(select(func.count()).where(Feedback.created_at > moment)) or 0


def last_run_start(session: Session) -> datetime | None:
    return session.scalar(select(func.max(TrainingRun.started_at)))


def should_retrain(session: Session, settings: Settings) -> str | None:
    """Why a scheduled run should start now, or None: enough feedback has arrived since the
    active version was trained and since the last run started."""
    active = active_version(session)
    if active is None:
        return None
    marks = [as_utc(active.created_at)]
    if (last := last_run_start(session)) is not None:
        marks.append(as_utc(last))
    new = feedback_since(session, max(marks))
    if new < settings.retrain_min_feedback:
        return None
    return f"{new} new feedback labels (threshold {settings.retrain_min_feedback})"


def retrain(
    settings: Settings, *, trigger: RunTrigger, reason: str | None = None
) -> TrainingRun | None:
    """One retraining run, recorded in `training_runs`; returns it, or None when a scheduled
    check finds too little new feedback."""
    engine = make_engine(settings.database_url)
    sessions = make_sessionmaker(engine)
    try:
        with sessions() as session:
            if running_run(session) is not None:
                raise RunInProgress("a retraining run is already in progress")
            if trigger == RunTrigger.schedule:
                reason = should_retrain(session, settings)
                if reason is None:
                    return None
            active = active_version(session)
            if active is None:
                raise RuntimeError("no active model to retrain")
            run = TrainingRun(
                trigger=trigger.value, reason=reason or trigger.value, base_version=active.version
            )
            session.add(run)
            session.commit()
            started = time.monotonic()
            try:
                execute_run(settings, session, run, active)
            except Exception as exc:
                log.exception("retraining run %d failed", run.id)
                session.rollback()
                run.status, run.error = RunStatus.failed, f"{type(exc).__name__}: {exc}"
            run.counts = dict(run.counts) | {"seconds": round(time.monotonic() - started, 1)}
            run.finished_at = utcnow()
            session.commit()
            return run
    finally:
        engine.dispose()


def execute_run(settings: Settings, session: Session, run: TrainingRun, active: ModelVersion):
    labeled, ties = collect_feedback(session)
    holdout = [item for item in labeled if held_out(item.review_id, settings.feedback_holdout)]
    learn = [item for item in labeled if not held_out(item.review_id, settings.feedback_holdout)]
    imdb = load_dataset(resolve_data(settings.imdb_data, settings.data_dir))
    gate_imdb, rest = imdb.train.hold_out(settings.gate_imdb_reviews)

    base_dir = Path(active.artifact_path)
    mode, run.mode_reason = choose_mode(
        Preprocessor.load(base_dir / PREPROCESSOR_FILE), [item.text for item in learn]
    )
    run.mode = mode.value
    if run.mode == RunMode.fine_tune:
        rest = rest.sample(settings.replay_reviews, DEFAULT_SEED)
    used = cap_share(learn, len(rest.texts), settings.feedback_max_share)
    train = Split(rest.texts + [i.text for i in used], rest.labels + [i.label for i in used])
    run.counts = {
        "labeled_reviews": len(labeled),
        "ties_dropped": ties,
        "feedback_train": len(used),
        "feedback_capped": len(learn) - len(used),
        "feedback_holdout": len(holdout),
        "imdb_train": len(rest.texts),
        "imdb_holdout": len(gate_imdb.texts),
    }
    if not used or not holdout:
        run.status = RunStatus.rejected
        run.decision = "too little feedback: none to learn from, or none held out to judge on"
        return
    session.commit()

    if run.mode == RunMode.fine_tune:
        request = TrainRequest(
            preset=active.preset,
            base=base_dir,
            epochs=FINE_TUNE_EPOCHS,
            learning_rate=FINE_TUNE_LEARNING_RATE,
        )
    else:  # from the latest pretrained vectors where the preset starts from them
        request = with_pretrained(TrainRequest(preset=active.preset, seed=DEFAULT_SEED), settings)
    staged = staging_dir(settings)
    try:
        metrics, fingerprint, candidate = train_into(staged, Dataset(train, imdb.test), request)
        current = Scorer.load(active.version, base_dir, active.artifact_sha256)
        feedback_split = Split([i.text for i in holdout], [i.label for i in holdout])
        figures = {
            name: {
                "imdb_accuracy": accuracy(scorer, gate_imdb),
                "feedback_accuracy": accuracy(scorer, feedback_split),
            }
            for name, scorer in (("candidate", candidate), ("active", current))
        }
        verdict = judge(figures["candidate"], figures["active"], settings)
        metrics["gate"] = {"promoted": verdict.promote, "reason": verdict.reason} | figures
        row = register_version(
            session,
            staged_dir=staged,
            model_dir=settings.model_dir,
            preset=active.preset,
            metrics=metrics,
            data_fingerprint=fingerprint,
            parent_version=active.version,
            activate_if_none=False,
        )
    except BaseException:
        shutil.rmtree(staged, ignore_errors=True)  # registering moves it; a failure leaves it
        raise
    if verdict.promote:
        activate_version(session, row.version)
    run.candidate_version = row.version
    run.metrics = figures
    run.decision = verdict.reason
    run.status = RunStatus.promoted if verdict.promote else RunStatus.rejected
