"""Retraining runs as the web and the trainer both see them."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from typing import cast

from sqlalchemy import CursorResult, case, func, select, update
from sqlalchemy.orm import Session

from sentiment_core.db import Feedback, Review, RunStatus, Sentiment, TrainingRun, utcnow
from sentiment_core.errors import Conflict
from sentiment_core.registry import activate_version

STALE_RUN = timedelta(hours=6)  # a run still "running" after this long has died; don't wait on it


def running_run(session: Session) -> TrainingRun | None:
    """The run in progress, if any. The database lets only one be running; one running for
    longer than `STALE_RUN` has died, and nothing waits on it."""
    return session.scalar(
        select(TrainingRun).where(
            TrainingRun.status == RunStatus.running, TrainingRun.started_at > utcnow() - STALE_RUN
        )
    )


def fail_stale_runs(session: Session) -> None:
    """Fail the runs still `running` after `STALE_RUN`: their process died (the database lets
    only one run be running)."""
    session.execute(
        update(TrainingRun)
        .where(
            TrainingRun.status == RunStatus.running, TrainingRun.started_at <= utcnow() - STALE_RUN
        )
        .values(
            status=RunStatus.failed,
            error=f"still running after {STALE_RUN.total_seconds() / 3600:g} h: its process died",
            finished_at=utcnow(),
        )
    )


def shadow_run(session: Session) -> TrainingRun | None:
    """The run whose candidate scores live traffic in shadow, if any."""
    return session.scalar(select(TrainingRun).where(TrainingRun.status == RunStatus.shadow))


@dataclass(frozen=True)
class ShadowFigures:
    """A candidate in shadow against the model that served the same reviews."""

    scored: int  # reviews the candidate scored in shadow
    agreed: int  # of those, on the same side of 0.5 as the served score
    # Per shadow-scored review with feedback (majority label; ties left out): whether the
    # candidate, then the served model, got it right.
    pairs: list[tuple[bool, bool]]

    @property
    def agreement(self) -> float | None:
        return self.agreed / self.scored if self.scored else None

    def as_dict(self) -> dict:
        return {
            "scored": self.scored,
            "agreement": self.agreement,
            "labeled": len(self.pairs),
            "candidate_right": sum(c for c, _ in self.pairs),
            "active_right": sum(a for _, a in self.pairs),
        }


def shadow_figures(session: Session, run: TrainingRun) -> ShadowFigures:
    shadowed = (Review.shadow_version == run.candidate_version) & (
        Review.model_version == run.base_version
    )
    same_side = (Review.score >= 0.5) == (Review.shadow_score >= 0.5)
    scored, agreed = session.execute(
        select(func.count(), func.coalesce(func.sum(case((same_side, 1), else_=0)), 0)).where(
            shadowed
        )
    ).one()
    votes = session.execute(
        select(Review.score, Review.shadow_score, Feedback.review_id, Feedback.label)
        .join(Feedback, Feedback.review_id == Review.id)
        .where(shadowed)
    ).all()
    tally: dict[int, list] = {}
    for score, shadow, review_id, label in votes:
        entry = tally.setdefault(review_id, [score, shadow, 0])
        entry[2] += 1 if label == Sentiment.positive else -1
    pairs = [
        ((shadow >= 0.5) == (balance > 0), (score >= 0.5) == (balance > 0))
        for score, shadow, balance in tally.values()
        if balance
    ]
    return ShadowFigures(int(scored), int(agreed), pairs)


def hold_run(session: Session, run: TrainingRun) -> bool:
    """Lock a run that waits for labels or scores in shadow until this transaction ends, for a
    decision to take effect with it; False, holding nothing, when another decision closed it
    first: an admin's and the trainer's can cross."""
    held = cast(
        CursorResult,
        session.execute(
            update(TrainingRun)
            .where(TrainingRun.id == run.id, TrainingRun.status == run.status)
            .values(status=run.status)
        ),
    ).rowcount
    if not held:
        session.rollback()
    return bool(held)


def close_run(session: Session, run: TrainingRun, promote: bool, reason: str) -> bool:
    """Close a run that waits for labels or scores in shadow: activate its candidate, or reject
    it, as also when its artifact is gone or damaged; commits. False, with nothing written, when
    another decision closed it first (`hold_run`). A run in shadow keeps its figures as they
    stand."""
    if run.status == RunStatus.shadow:
        figures = shadow_figures(session, run).as_dict()
        run.metrics = run.metrics | {"shadow": run.metrics["shadow"] | figures}
    if not hold_run(session, run):
        return False
    run.status = RunStatus.promoted if promote else RunStatus.rejected
    run.decision, run.finished_at = reason, utcnow()
    if promote and run.candidate_version:
        try:
            activate_version(session, run.candidate_version)  # commits
        except Conflict as exc:  # no worker could load it: the run must not stay open for it
            run.status = RunStatus.rejected
            run.decision = f"{reason}; not promoted: {exc.message}"
    session.commit()
    return True
