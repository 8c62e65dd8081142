"""How often the promotion gate is wrong, on simulated pairs of models whose true accuracies are
known (issue 12).

Each trial draws both models' outcomes on the held-out reviews: on each one the candidate alone is
right with probability (q + d) / 2 and the active model alone with (q - d) / 2, where d is the
true accuracy difference and q the share of reviews the two disagree on. The gate
(`sentiment_core/gate.py`) then judges the IMDb slice and the held-out feedback, as a run does.

    .venv/bin/python bench/gate_simulation.py [--trials 10000] [--imdb-reviews 2000 5000]

A run of the served `best` holds out 4,315 IMDb reviews (the slice and the validation movies):
`--imdb-reviews 4315`.
"""

from __future__ import annotations

import argparse
from collections import Counter

import numpy as np

from sentiment_core.gate import Decision, Difference, decide

CONFIDENCE = 0.90  # the gate's default: each bound is a one-sided 95 % bound
MAX_IMDB_DROP, MIN_GAIN = 0.005, 0.0
FEEDBACK_DISAGREE = 0.10  # share of held-out feedback the two models answer differently


def draw(rng: np.random.Generator, reviews: int, difference: float, disagree: float) -> Difference:
    p = [(disagree + difference) / 2, (disagree - difference) / 2]
    candidate_only, active_only, _ = rng.multinomial(reviews, [*p, 1 - sum(p)])
    return Difference.from_counts(reviews, int(candidate_only), int(active_only), CONFIDENCE)


def simulate(
    trials: int, labels: int, gain: float, imdb_reviews: int, imdb_disagree: float, seed: int = 1
) -> Counter[Decision]:
    """The gate's decisions over `trials` candidates `gain` better on feedback than the active
    model, and as good on IMDb, where the two disagree on `imdb_disagree` of the reviews."""
    rng = np.random.default_rng(seed)
    return Counter(
        decide(
            draw(rng, imdb_reviews, 0.0, imdb_disagree),
            draw(rng, labels, gain, FEEDBACK_DISAGREE),
            MAX_IMDB_DROP,
            MIN_GAIN,
        ).decision
        for _ in range(trials)
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--trials", type=int, default=10_000)
    parser.add_argument("--labels", type=int, nargs="+", default=[250, 500, 1000, 2000])
    parser.add_argument("--imdb-reviews", type=int, nargs="+", default=[2000, 5000])
    parser.add_argument("--imdb-disagree", type=float, nargs="+", default=[0.01, 0.02, 0.05])
    args = parser.parse_args()
    print(
        f"{args.trials} trials a row; {CONFIDENCE:.0%} intervals; the models disagree on "
        f"{FEEDBACK_DISAGREE:.0%} of held-out feedback\n"
    )
    print(
        "| IMDb slice | IMDb disagree | held-out labels | true gain | promoted | waits | rejected |"
    )
    print("| ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    for imdb in args.imdb_reviews:
        for disagree in args.imdb_disagree:
            for labels in args.labels:
                for gain in (0.0, 0.03):
                    counts = simulate(args.trials, labels, gain, imdb, disagree)
                    share = {d: counts[d] / args.trials for d in Decision}
                    print(
                        f"| {imdb:,} | {disagree:.0%} | {labels:,} | {100 * gain:+.0f} points | "
                        f"{share[Decision.promote]:.1%} | {share[Decision.wait]:.1%} | "
                        f"{share[Decision.reject]:.1%} |"
                    )


if __name__ == "__main__":
    main()
