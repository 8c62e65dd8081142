"""Retraining on users' feedback, and the gate a candidate must pass to go live.

A run takes the IMDb training reviews and every labeled review, keeps a fixed IMDb slice, the
base's validation movies and a stable share of the feedback out of training, trains a candidate
(continuing from the active model, its vocabulary grown by the feedback's new words; or from
scratch when RETRAIN_MODE says so), scores both models on the same held-out data, and compares
them pair by pair (`sentiment_core/gate.py`): it promotes the candidate only when the interval
of its gain on held-out feedback lies above 0 and the interval of its IMDb difference above
-`gate_max_imdb_drop`. When the feedback interval still straddles 0 the run waits: every
scheduled check scores both models again on the held-out feedback that has arrived since,
until the evidence decides.
"""

from __future__ import annotations

import logging
import random
import shutil
import time
from collections import Counter, defaultdict
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

from sqlalchemy import func, select, update
from sqlalchemy.exc import IntegrityError
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
from sentiment_core.errors import Conflict
from sentiment_core.gate import (
    LOOK_GROWTH,
    Decision,
    Difference,
    decide,
    look_confidence,
    paired_difference,
)
from sentiment_core.labeling import held_out, recent_traffic
from sentiment_core.registry import (
    PREPROCESSOR_FILE,
    activate_version,
    active_version,
    check_artifact,
    get_version,
    register_version,
)
from sentiment_core.runs import (
    close_run,
    fail_stale_runs,
    hold_run,
    running_run,
    shadow_figures,
)
from sentiment_core.settings import Settings
from sentiment_core.text import Preprocessor, tokenize
from sentiment_inference.scoring import Scorer
from trainer.data import Dataset, Split, load_dataset, resolve_data
from trainer.model import PRESETS
from trainer.pretrain import Pretrained, latest_artifact, load_pretrained
from trainer.train import (
    DEFAULT_SEED,
    TrainRequest,
    staging_dir,
    train_into,
    training_parts,
    with_pretrained,
)

log = logging.getLogger(__name__)

FINE_TUNE_EPOCHS = 3
FINE_TUNE_LEARNING_RATE = 3e-4  # a third of Adam's default: adjust the model, don't restart it
# Beside an n-gram branch only the new words' vectors learn, from where they start, alone.
NEW_WORDS_LEARNING_RATE = 3e-3
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


def cap_share(items: list, others: int, max_share: float, seed: int = DEFAULT_SEED) -> list:
    """At most `max_share` of a training set that also holds `others` examples."""
    limit = int(max_share / (1 - max_share) * others) if max_share < 1 else len(items)
    return items if len(items) <= limit else random.Random(seed).sample(items, limit)


def choose_mode(
    preprocessor: Preprocessor, texts: list[str], mode: RunMode, preset: str
) -> tuple[RunMode, str, tuple[str, ...]]:
    """How the run trains, why, and the words the fine-tuned model's vocabulary grows by: those
    outside it in `NEW_WORD_MIN_SHARE` of the labeled reviews (and at least 3)."""
    if mode == RunMode.scratch:
        return (
            mode,
            "RETRAIN_MODE is scratch: the vocabulary is refitted and the model trained anew",
            (),
        )
    unknown = Counter(
        word for text in texts for word in set(tokenize(text)) if not preprocessor.knows(word)
    )
    needed = max(3, int(NEW_WORD_MIN_SHARE * len(texts)))
    new_words = tuple(sorted(w for w, n in unknown.items() if n >= needed))
    rate = f"{FINE_TUNE_EPOCHS} epochs at learning rate {fine_tune_rate(preset)}"
    if PRESETS[preset].ngram_buckets:
        why = (
            "training continues from the active model: its n-gram regression is refitted on "
            "the IMDb training reviews and the feedback, its LSTM learns only new words "
            f"({rate})"
        )
    else:
        why = f"training continues from the active model ({rate})"
    if new_words:
        shown = ", ".join(new_words[:8]) + (", …" if len(new_words) > 8 else "")
        why += (
            f"; its vocabulary grows by {len(new_words)} word{'s' * (len(new_words) > 1)} "
            f"found in at least {needed} labeled reviews ({shown})"
        )
    return mode, why, new_words


def fine_tune_rate(preset: str) -> float:
    return NEW_WORDS_LEARNING_RATE if PRESETS[preset].ngram_buckets else FINE_TUNE_LEARNING_RATE


def correct(scorer: Scorer, split: Split) -> list[bool]:
    """Whether the model gets each review of `split` right."""
    return [
        (score >= 0.5) == bool(label)
        for score, label in zip(scorer.score(split.texts), split.labels, strict=True)
    ]


def compare(candidate: Scorer, active: Scorer, split: Split, confidence: float) -> Difference:
    """The candidate's accuracy minus the active model's on `split`, with its interval."""
    return paired_difference(correct(candidate, split), correct(active, split), confidence)


def settle(
    session: Session,
    run: TrainingRun,
    candidate: str,
    imdb: Difference,
    feedback: Difference,
    settings: Settings,
    look: int,
) -> None:
    """Decide the run on both comparisons, feedback judged at its `look`, and record why, with
    the evidence."""
    verdict = decide(
        imdb,
        feedback,
        settings.gate_max_imdb_drop,
        settings.gate_min_gain,
        look_confidence(settings.gate_confidence, look + 1),
    )
    run.metrics = {
        "imdb": imdb.as_dict(),
        "feedback": feedback.as_dict(),
        "labels_needed": verdict.labels_needed,
        "looks": look,
    }
    run.decision = verdict.reason
    run.status = {
        Decision.promote: RunStatus.promoted,
        Decision.reject: RunStatus.rejected,
        Decision.wait: RunStatus.waiting,
    }[verdict.decision]
    if verdict.decision != Decision.promote:
        return
    if settings.shadow_period_s and settings.shadow_share:
        until = utcnow() + timedelta(seconds=settings.shadow_period_s)
        run.status = RunStatus.shadow
        run.metrics = run.metrics | {
            "shadow": {"until": until.isoformat(), "share": settings.shadow_share}
        }
        run.decision = (
            f"passed the gate ({verdict.reason}); scoring {settings.shadow_share:.0%} of the "
            f"batches in shadow until {until:%Y-%m-%d %H:%M} UTC"
        )
    else:
        activate_version(session, candidate)


def closed_as_served(session: Session, run: TrainingRun, active: ModelVersion | None) -> bool:
    """Close a pending run whose base model no longer serves: promoted where an admin activated
    its candidate, rejected otherwise. False where the base still serves."""
    if active is not None and active.version == run.base_version:
        return False
    if active is not None and active.version == run.candidate_version:
        close_run(session, run, True, f"{run.decision}; an admin activated its candidate meanwhile")
    else:
        close_run(session, run, False, f"{run.decision}; the active model changed meanwhile")
    return True


def review_shadow(settings: Settings, session: Session, run: TrainingRun) -> None:
    """Record a candidate's figures in shadow so far; once its period is over, promote it
    unless the feedback that arrived on the reviews it scored says it is worse (the interval of
    its difference from the served model lies below 0), or the active model changed. A
    candidate that has scored no review yet has no live evidence: its period goes on, as long
    again at most, unless its artifact is gone or damaged, when no worker could load it."""
    figures = shadow_figures(session, run)
    shadow = run.metrics["shadow"] | figures.as_dict()
    run.metrics = run.metrics | {"shadow": shadow}
    until = datetime.fromisoformat(shadow["until"])
    if utcnow() < until:
        return
    if closed_as_served(session, run, active_version(session)):
        return
    if not figures.scored:
        candidate = get_version(session, run.candidate_version or "")
        assert candidate is not None  # a run in shadow has a registered candidate
        try:
            check_artifact(candidate)
        except Conflict as exc:
            close_run(session, run, False, f"{run.decision}; not promoted: {exc.message}")
            return
        if utcnow() >= until + timedelta(seconds=settings.shadow_period_s):
            reason = "not promoted: it scored no review in shadow, in twice its period"
            close_run(session, run, False, f"{run.decision}; {reason}")
        return
    live = paired_difference(
        [c for c, _ in figures.pairs], [a for _, a in figures.pairs], settings.gate_confidence
    )
    run.metrics = run.metrics | {"shadow": shadow | {"feedback": live.as_dict()}}
    agreement = "no review" if figures.agreement is None else f"{figures.agreement:.1%}"
    evidence = (
        f"in shadow it scored {figures.scored} reviews, agreeing with the active model on "
        f"{agreement}; on the {live.reviews} of them with feedback it was "
        f"{100 * live.difference:+.1f} [{100 * live.low:+.1f}, {100 * live.high:+.1f}] points"
    )
    if live.high < 0:
        close_run(session, run, False, f"worse on live feedback: {evidence}")
    else:
        close_run(session, run, True, f"promoted after its shadow period: {evidence}")


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
    settings: Settings, *, trigger: RunTrigger, reason: str | None = None, by_trainer: bool = False
) -> TrainingRun | None:
    """One retraining run, recorded in `training_runs`; returns it, or None when a scheduled
    check finds too little new feedback. `by_trainer`: the trainer service runs it."""
    engine = make_engine(settings.database_url)
    sessions = make_sessionmaker(engine)
    try:
        with sessions() as session:
            if running_run(session) is not None:
                raise RunInProgress("a retraining run is already in progress")
            pending = session.scalar(
                select(TrainingRun).where(
                    TrainingRun.status.in_([RunStatus.waiting, RunStatus.shadow])
                )
            )
            if pending is not None and trigger == RunTrigger.schedule:
                if pending.status == RunStatus.shadow:
                    review_shadow(settings, session, pending)
                else:
                    recheck(settings, session, pending)
                session.commit()
                return pending
            if pending is not None:  # an admin asked for a new run: it replaces the pending one
                close_run(
                    session,
                    pending,
                    False,
                    f"{pending.decision}; replaced by a run started by hand",
                )
            if trigger == RunTrigger.schedule:
                reason = should_retrain(session, settings)
                if reason is None:
                    return None
            active = active_version(session)
            if active is None:
                raise RuntimeError("no active model to retrain")
            run = TrainingRun(
                trigger=trigger.value,
                reason=reason or trigger.value,
                base_version=active.version,
                by_trainer=by_trainer,
            )
            fail_stale_runs(session)
            session.add(run)
            try:
                session.commit()
            except IntegrityError as exc:  # another process started one since the check above
                raise RunInProgress("a retraining run is already in progress") from exc
            started = time.monotonic()
            interrupted = None
            try:
                execute_run(settings, session, run, active)
            except BaseException as exc:  # an interrupted run too, or it would block the next
                log.exception("retraining run %d failed", run.id)
                session.rollback()
                run.status, run.error = RunStatus.failed, f"{type(exc).__name__}: {exc}"
                interrupted = None if isinstance(exc, Exception) else exc
            run.counts = dict(run.counts) | {"seconds": round(time.monotonic() - started, 1)}
            if run.status not in (RunStatus.waiting, RunStatus.shadow):
                run.finished_at = utcnow()
            session.commit()
            if interrupted is not None:
                raise interrupted
            return run
    finally:
        engine.dispose()


def fail_interrupted_runs(settings: Settings) -> int:
    """Fail the runs a killed trainer left `running` (a run that can still catch its end fails
    itself), so they do not block retraining until `STALE_RUN`; the trainer calls this as it
    starts. A run `sentiment retrain` started is not the trainer's: it may still be going.
    Returns how many."""
    engine = make_engine(settings.database_url)
    try:
        with make_sessionmaker(engine)() as session:
            failed = session.execute(
                update(TrainingRun)
                .where(TrainingRun.status == RunStatus.running, TrainingRun.by_trainer)
                .values(
                    status=RunStatus.failed,
                    error="the trainer stopped during the run",
                    finished_at=utcnow(),
                )
            ).rowcount
            session.commit()
            return failed
    finally:
        engine.dispose()


def execute_run(settings: Settings, session: Session, run: TrainingRun, active: ModelVersion):
    labeled, ties = collect_feedback(session)
    holdout = [item for item in labeled if held_out(item.review_id, settings.feedback_holdout)]
    learn = [item for item in labeled if not held_out(item.review_id, settings.feedback_holdout)]
    imdb = load_dataset(resolve_data(settings.imdb_data, settings.data_dir))
    gate_slice, rest = imdb.train.hold_out(settings.gate_imdb_reviews)

    base_dir = Path(active.artifact_path)
    mode, run.mode_reason, new_words = choose_mode(
        Preprocessor.load(base_dir / PREPROCESSOR_FILE),
        [item.text for item in learn],
        RunMode(settings.retrain_mode),
        active.preset,
    )
    run.mode = mode.value
    used = cap_share(learn, len(rest.texts), settings.feedback_max_share)
    run.counts = {
        "labeled_reviews": len(labeled),
        "ties_dropped": ties,
        "feedback_train": len(used),
        "feedback_capped": len(learn) - len(used),
        "feedback_holdout": len(holdout),
    }
    if not used or not holdout:
        run.status = RunStatus.rejected
        run.decision = "too little feedback: none to learn from, or none held out to judge on"
        return

    # The base's seed splits the IMDb reviews into the same training and validation movies as
    # the base's own run, so the candidate is judged on IMDb on the fixed slice and on those
    # validation movies: reviews neither model learned from. (A base trained on other reviews
    # may have learned from some of them, which only favours the base.)
    seed = active.metrics.get("seed", DEFAULT_SEED)
    unlabeled = unlabeled_traffic(session)
    if run.mode == RunMode.fine_tune:
        request = TrainRequest(
            preset=active.preset,
            base=base_dir,
            seed=seed,
            epochs=FINE_TUNE_EPOCHS,
            learning_rate=fine_tune_rate(active.preset),
            pretrained=latest_pretrained(settings) if new_words else None,
            new_words=new_words,
            feedback=as_split(used),
            replay=settings.replay_reviews,
            unlabeled=unlabeled,
        )
    else:  # from the latest pretrained vectors where the preset starts from them
        request = with_pretrained(
            TrainRequest(
                preset=active.preset, seed=seed, feedback=as_split(used), unlabeled=unlabeled
            ),
            settings,
        )
    fitted, validation = training_parts(rest, request)
    gate_imdb = Split(gate_slice.texts + validation.texts, gate_slice.labels + validation.labels)
    run.counts = run.counts | {
        "imdb_train": len(fitted.texts),
        "imdb_holdout": len(gate_imdb.texts),
    }
    session.commit()
    staged = staging_dir(settings)
    try:
        metrics, fingerprint, candidate = train_into(staged, Dataset(rest, imdb.test), request)
        current = scorer_for(active)
        imdb_difference = compare(candidate, current, gate_imdb, settings.gate_confidence)
        first_look = look_confidence(settings.gate_confidence, 1)
        feedback_difference = compare(candidate, current, as_split(holdout), first_look)
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
        shutil.rmtree(staged, ignore_errors=True)  # a failed run leaves no half-written folder
        raise
    run.candidate_version = row.version
    settle(session, run, row.version, imdb_difference, feedback_difference, settings, 1)


def unlabeled_traffic(session: Session) -> tuple[str, ...]:
    """The texts of the `QUEUE_WINDOW` most recent scored reviews that nobody labeled."""
    return tuple(session.scalars(recent_traffic(Review.text).where(~Review.feedback.any())))


def recheck(settings: Settings, session: Session, run: TrainingRun) -> None:
    """Judge a waiting run again on all the held-out feedback there is now, once it has grown
    by `LOOK_GROWTH` since the last look (each look spends some of the gate's error)."""
    if closed_as_served(session, run, active := active_version(session)):
        return
    candidate = get_version(session, run.candidate_version or "")
    assert candidate is not None and active is not None  # a waiting run has a candidate
    labeled, _ = collect_feedback(session)
    holdout = [item for item in labeled if held_out(item.review_id, settings.feedback_holdout)]
    if len(holdout) <= LOOK_GROWTH * run.metrics["feedback"]["reviews"]:
        return  # too little new to judge on
    look = run.metrics.get("looks", 1) + 1
    confidence = look_confidence(settings.gate_confidence, look)
    try:
        check_artifact(candidate)
    except Conflict as exc:
        close_run(session, run, False, f"{run.decision}; not judged again: {exc.message}")
        return
    feedback = compare(scorer_for(candidate), scorer_for(active), as_split(holdout), confidence)
    if not hold_run(session, run):
        return  # decided elsewhere while its labels were scored
    run.counts = dict(run.counts) | {"feedback_holdout": len(holdout)}
    imdb = Difference(**run.metrics["imdb"])
    settle(session, run, candidate.version, imdb, feedback, settings, look)
    if run.status not in (RunStatus.waiting, RunStatus.shadow):
        run.finished_at = utcnow()


def latest_pretrained(settings: Settings) -> Pretrained | None:
    """The latest pretraining artifact, for new words' vectors; None when there is none."""
    root = settings.pretrained_dir
    return load_pretrained(folder) if (folder := latest_artifact(root)) else None


def scorer_for(row: ModelVersion) -> Scorer:
    return Scorer.load(row.version, Path(row.artifact_path), row.artifact_sha256)


def as_split(items: list[Labeled]) -> Split:
    return Split([i.text for i in items], [i.label for i in items])
