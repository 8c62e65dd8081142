"""How often the promotion gate is wrong, on simulated pairs of models whose true accuracies are
known (issue 12).

Each trial draws both models' outcomes on the held-out reviews: on each one the candidate alone is
right with probability (q + d) / 2 and the active model alone with (q - d) / 2, where d is the
true accuracy difference and q the share of reviews the two disagree on. The gate
(`sentiment_core/gate.py`) then judges the IMDb slice and the held-out feedback, as a run does,
and a run that waits is judged again, as the trainer does, each time its held-out labels have
grown by `LOOK_GROWTH`, at that look's confidence, until it is decided or its labels reach
`--horizon` times the first look's.

    .venv/bin/python bench/gate_simulation.py [--trials 10000] [--imdb-reviews 2000 5000]

A run of the served `best` holds out 4,315 IMDb reviews (the slice and the validation movies):
`--imdb-reviews 4315`.
"""

from __future__ import annotations

import argparse
import math
from collections import Counter

import numpy as np

from sentiment_core.gate import LOOK_GROWTH, Decision, Difference, decide, look_confidence

CONFIDENCE = 0.90  # the gate's default: over all of a run's looks, a one-sided 95 % bound
MAX_IMDB_DROP, MIN_GAIN = 0.005, 0.0
FEEDBACK_DISAGREE = 0.10  # share of held-out feedback the two models answer differently


def outcomes(difference: float, disagree: float) -> list[float]:
    """The chances that a review is right for the candidate alone, the active model alone, or
    neither or both."""
    p = [(disagree + difference) / 2, (disagree - difference) / 2]
    return [*p, 1 - sum(p)]


def judge(
    rng: np.random.Generator,
    labels: int,
    gain: float,
    imdb_reviews: int,
    imdb_disagree: float,
    horizon: float,
) -> tuple[Decision, Decision]:
    """One run's decision at its first look, and in the end: promoted, rejected, or still
    waiting once the next look would need more than `horizon` times `labels`."""
    candidate_only, active_only, _ = rng.multinomial(imdb_reviews, outcomes(0.0, imdb_disagree))
    imdb = Difference.from_counts(imdb_reviews, int(candidate_only), int(active_only), CONFIDENCE)
    last = horizon * labels
    counts = np.zeros(3, dtype=int)
    reviews, look, first = 0, 1, None
    while True:
        counts += rng.multinomial(labels - reviews, outcomes(gain, FEEDBACK_DISAGREE))
        reviews = labels
        feedback = Difference.from_counts(
            reviews, int(counts[0]), int(counts[1]), look_confidence(CONFIDENCE, look)
        )
        decision = decide(
            imdb, feedback, MAX_IMDB_DROP, MIN_GAIN, look_confidence(CONFIDENCE, look + 1)
        ).decision
        first = first or decision
        labels = math.floor(LOOK_GROWTH * reviews) + 1  # the trainer's next look
        if decision is not Decision.wait or labels > last:
            return first, decision
        look += 1


def simulate(
    trials: int,
    labels: int,
    gain: float,
    imdb_reviews: int,
    imdb_disagree: float,
    horizon: float = 4.0,
    seed: int = 1,
) -> tuple[Counter[Decision], Counter[Decision]]:
    """The gate's decisions, at the first look and in the end, over `trials` candidates `gain`
    better on feedback than the active model, and as good on IMDb, where the two disagree on
    `imdb_disagree` of the reviews."""
    rng = np.random.default_rng(seed)
    runs = [judge(rng, labels, gain, imdb_reviews, imdb_disagree, horizon) for _ in range(trials)]
    return Counter(first for first, _ in runs), Counter(last for _, last in runs)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--trials", type=int, default=10_000)
    parser.add_argument("--labels", type=int, nargs="+", default=[250, 500, 1000, 2000])
    parser.add_argument("--imdb-reviews", type=int, nargs="+", default=[2000, 5000])
    parser.add_argument("--imdb-disagree", type=float, nargs="+", default=[0.01, 0.02, 0.05])
    parser.add_argument("--horizon", type=float, default=4.0)
    args = parser.parse_args()
    print(
        f"{args.trials} trials a row; {CONFIDENCE:.0%} over all looks; the models disagree on "
        f"{FEEDBACK_DISAGREE:.0%} of held-out feedback; looks until {args.horizon:g} times the "
        "first look's labels\n"
    )
    print(
        "| IMDb held out | IMDb disagree | held-out labels | true gain | promoted at the first "
        "look | promoted in the end | still waiting | rejected |"
    )
    print("| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    for imdb in args.imdb_reviews:
        for disagree in args.imdb_disagree:
            for labels in args.labels:
                for gain in (0.0, 0.03):
                    first, last = simulate(args.trials, labels, gain, imdb, disagree, args.horizon)
                    share = {d: last[d] / args.trials for d in Decision}
                    print(
                        f"| {imdb:,} | {disagree:.0%} | {labels:,} | {100 * gain:+.0f} points | "
                        f"{first[Decision.promote] / args.trials:.1%} | "
                        f"{share[Decision.promote]:.1%} | {share[Decision.wait]:.1%} | "
                        f"{share[Decision.reject]:.1%} |"
                    )


if __name__ == "__main__":
    main()
