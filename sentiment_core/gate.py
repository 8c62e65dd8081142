"""The promotion gate's statistics: the candidate against the active model on the same reviews.

Each held-out review is a pair of outcomes, so the comparison is paired (McNemar): only the
reviews on which the two models disagree carry information. Given `m` such reviews, the number
the candidate gets right is binomial, and an exact (Clopper-Pearson) interval for its share gives
an interval for the accuracy difference, `(2p - 1) m / n`, on the `n` reviews.

A run that waits is judged again as held-out labels arrive, and every look is one more chance
to promote a candidate that is no better by luck. So each look spends a share of the error
the confidence allows (`look_confidence`), the shares summing to the whole: over all the looks
of a run together, such a candidate is promoted at most as often as the confidence says.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from enum import Enum

LOOK_GROWTH = 1.25  # a waiting run is judged again once its held-out labels grew by a quarter


def look_confidence(confidence: float, look: int) -> float:
    """The confidence of the held-out feedback's interval at a run's `look`-th judgment: look k
    spends 6 / (pi k)^2 of the one-sided error that `confidence` allows (the shares sum to 1)."""
    error = (1 - confidence) / 2 * 6 / (math.pi * look) ** 2
    return 1 - 2 * error


class Decision(str, Enum):
    promote = "promote"
    reject = "reject"
    wait = "wait"  # not enough evidence yet: more held-out labels could decide


@dataclass(frozen=True)
class Difference:
    """The candidate's accuracy minus the active model's, in [low, high] at `confidence`."""

    reviews: int
    difference: float
    low: float
    high: float
    candidate_only: int  # reviews the candidate gets right and the active model wrong
    active_only: int
    confidence: float

    @classmethod
    def from_counts(
        cls, reviews: int, candidate_only: int, active_only: int, confidence: float
    ) -> Difference:
        from scipy.stats import beta

        discordant = candidate_only + active_only
        if discordant == 0:  # the same answers everywhere: no difference, and no doubt about it
            return cls(reviews, 0.0, 0.0, 0.0, 0, 0, confidence)
        tail = (1 - confidence) / 2  # Clopper-Pearson: beta quantiles of the candidate's share
        low = beta.ppf(tail, candidate_only, active_only + 1) if candidate_only else 0.0
        high = beta.ppf(1 - tail, candidate_only + 1, active_only) if active_only else 1.0
        scale = discordant / reviews
        return cls(
            reviews,
            (candidate_only - active_only) / reviews,
            float(2 * low - 1) * scale,
            float(2 * high - 1) * scale,
            candidate_only,
            active_only,
            confidence,
        )

    def labels_to_decide(self, threshold: float, confidence: float) -> int | None:
        """About how many reviews in all a difference of this size needs for its interval at
        `confidence` to leave `threshold` (normal approximation); None when it sits on it."""
        from scipy.stats import norm

        gap = abs(self.difference - threshold)
        if self.reviews == 0 or gap == 0:
            return None
        discordant = (self.candidate_only + self.active_only) / self.reviews
        variance = max(discordant - self.difference**2, 1e-12)  # of one review's difference
        z = norm.ppf(0.5 + confidence / 2)
        return math.ceil(z**2 * variance / gap**2)

    def as_dict(self) -> dict:
        return asdict(self)


def paired_difference(
    candidate_correct: Sequence[bool], active_correct: Sequence[bool], confidence: float
) -> Difference:
    pairs = list(zip(candidate_correct, active_correct, strict=True))
    candidate_only = sum(c and not a for c, a in pairs)
    active_only = sum(a and not c for c, a in pairs)
    return Difference.from_counts(len(pairs), candidate_only, active_only, confidence)


@dataclass(frozen=True)
class Verdict:
    decision: Decision
    reason: str
    labels_needed: int | None = None  # more held-out feedback labels, when the run waits


def decide(
    imdb: Difference,
    feedback: Difference,
    max_imdb_drop: float,
    min_gain: float,
    next_confidence: float,
) -> Verdict:
    """Promote when the candidate is no worse on IMDb (the lower bound is at least
    -`max_imdb_drop`) and better on held-out feedback (the lower bound is above `min_gain`).
    Reject when it may be worse on IMDb (the IMDb reviews are fixed: waiting cannot settle it), or
    when it has not done better on feedback so far (more labels would only pin that down).
    Otherwise, ahead but not surely, wait for more feedback labels: about as many as the next
    look, at `next_confidence`, needs, and never fewer than that look waits for."""
    imdb_text = f"{_points(imdb)} points ({_level(imdb)})"
    feedback_text = f"{_points(feedback)} points ({_level(feedback)})"
    if imdb.low < -max_imdb_drop:
        return Verdict(
            Decision.reject,
            f"may be worse on IMDb held-out: {imdb_text}, the lower bound below "
            f"-{100 * max_imdb_drop:.1f}",
        )
    if feedback.difference <= min_gain:
        return Verdict(Decision.reject, f"not better on held-out feedback: {feedback_text}")
    if feedback.low > min_gain:
        return Verdict(
            Decision.promote,
            f"better on held-out feedback, {feedback_text}, and no worse on IMDb "
            f"held-out, {imdb_text}",
        )
    total = feedback.labels_to_decide(min_gain, next_confidence)
    at_least = math.ceil((LOOK_GROWTH - 1) * feedback.reviews)
    needed = None if total is None else max(total - feedback.reviews, at_least, 1)
    wanted = "more labels than a difference this small can use" if needed is None else (
        f"about {needed} more held-out labels for a difference of this size"
    )  # fmt: skip
    return Verdict(
        Decision.wait,
        f"not enough evidence yet: {_points(feedback)} points on {feedback.reviews} held-out "
        f"feedback labels ({_level(feedback)}); {wanted}",
        needed,
    )


def _points(d: Difference) -> str:
    return f"{100 * d.difference:+.1f} [{100 * d.low:+.1f}, {100 * d.high:+.1f}]"


def _level(d: Difference) -> str:
    return f"{100 * d.confidence:.3g} %"
