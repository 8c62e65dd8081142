import math

import pytest
from scipy.stats import binom

from bench.gate_simulation import simulate
from sentiment_core.gate import (
    LOOK_GROWTH,
    Decision,
    Difference,
    decide,
    look_confidence,
    paired_difference,
)


def test_the_interval_is_exact_for_the_reviews_the_models_disagree_on() -> None:
    # 10 reviews, the candidate alone right on all 10: the share's 90 % lower bound solves
    # p^10 = 0.05, so the difference's is 2 * 0.05^(1/10) - 1.
    d = paired_difference([True] * 10, [False] * 10, confidence=0.90)
    assert d.difference == 1.0 and d.high == 1.0
    assert d.low == pytest.approx(2 * 0.05 ** (1 / 10) - 1)
    # 1,000 reviews, 30 only the candidate gets right, 10 only the active model, 960 both or
    # neither: the bounds on the share of the 40 are where a binomial tail reaches 5 %.
    d = Difference.from_counts(1000, 30, 10, confidence=0.90)
    assert d.difference == pytest.approx(0.02)
    share_low, share_high = (d.low * 1000 / 40 + 1) / 2, (d.high * 1000 / 40 + 1) / 2
    assert binom.sf(29, 40, share_low) == pytest.approx(0.05)
    assert binom.cdf(30, 40, share_high) == pytest.approx(0.05)


def test_pairs_count_only_where_the_models_disagree() -> None:
    candidate = [True, True, False, False, True]
    active = [True, False, True, False, False]
    d = paired_difference(candidate, active, 0.9)
    assert (d.reviews, d.candidate_only, d.active_only) == (5, 2, 1)
    assert d.difference == pytest.approx(0.2)
    same = paired_difference(candidate, candidate, 0.9)
    assert (same.difference, same.low, same.high) == (0.0, 0.0, 0.0)
    with pytest.raises(ValueError):
        paired_difference(candidate, active[:3], 0.9)


def test_labels_to_decide_follow_the_observed_difference() -> None:
    d = Difference.from_counts(100, 3, 1, confidence=0.90)  # +2 points, 4 % disagree
    # z^2 * (0.04 - 0.02^2) / 0.02^2 with z = 1.645 (90 %, two-sided)
    assert d.labels_to_decide(0.0, 0.90) == math.ceil(1.6448536**2 * (0.04 - 0.0004) / 0.0004)
    assert d.labels_to_decide(0.0, 0.98) == math.ceil(2.3263479**2 * (0.04 - 0.0004) / 0.0004)
    assert d.labels_to_decide(0.02, 0.90) is None


def test_the_looks_of_a_run_share_the_gate_error() -> None:
    """Look k spends 6 / (pi k)^2 of the one-sided error: 90 % gives 3.04 % to the first look,
    0.76 % to the second, and all the looks together 5 %."""
    assert 1 - look_confidence(0.90, 1) == pytest.approx(2 * 0.05 * 6 / math.pi**2)
    assert look_confidence(0.90, 2) == pytest.approx(1 - 2 * 0.05 * 6 / (4 * math.pi**2))
    spent = sum((1 - look_confidence(0.90, k)) / 2 for k in range(1, 100_000))
    assert spent == pytest.approx(0.05, abs=1e-6) and spent < 0.05


IMDB_SAME = Difference.from_counts(5000, 20, 20, 0.90)  # +0.0 [-0.2, +0.2] points


@pytest.mark.parametrize(
    ("imdb", "feedback", "decision", "reason"),
    [
        (IMDB_SAME, Difference.from_counts(1000, 60, 20, 0.9), Decision.promote, "better on"),
        (
            Difference.from_counts(2000, 10, 40, 0.9),
            Difference.from_counts(1000, 60, 20, 0.9),
            Decision.reject,
            "may be worse on IMDb held-out: -1.5 [",
        ),
        (IMDB_SAME, Difference.from_counts(1000, 20, 60, 0.9), Decision.reject, "not better"),
        (
            IMDB_SAME,
            Difference.from_counts(200, 6, 3, 0.9),
            Decision.wait,
            "not enough evidence yet: +1.5 [",
        ),
    ],
)
def test_the_gate_promotes_rejects_or_waits(imdb, feedback, decision, reason) -> None:
    verdict = decide(imdb, feedback, max_imdb_drop=0.005, min_gain=0.0, next_confidence=0.95)
    assert verdict.decision is decision and reason in verdict.reason
    if decision is Decision.wait:
        needed = feedback.labels_to_decide(0.0, 0.95) - feedback.reviews
        assert verdict.labels_needed == needed and f"about {needed} more" in verdict.reason
    else:
        assert verdict.labels_needed is None


def test_a_waiting_run_asks_for_at_least_what_its_next_look_waits_for() -> None:
    """A lopsided few (3 to 0) would decide in a normal approximation already; the exact
    interval does not, and the next look comes only once the labels grew by LOOK_GROWTH."""
    feedback = Difference.from_counts(100, 3, 0, 0.90)
    assert feedback.labels_to_decide(0.0, 0.90) < 100
    verdict = decide(IMDB_SAME, feedback, 0.005, 0.0, next_confidence=0.90)
    assert verdict.decision is Decision.wait
    assert verdict.labels_needed == math.ceil((LOOK_GROWTH - 1) * 100)


def test_the_gate_errs_within_its_bounds_on_simulated_models() -> None:
    """bench/gate_simulation.py's set-up: held-out feedback on which the models disagree 10 % of
    the time, and the 4,315 IMDb reviews a run of the served model holds out (the slice and the
    validation movies), on which they are equally good and disagree 1 % of the time. A run that
    waits is judged again as its labels grow, up to four times the first look's."""
    trials = 1000
    for labels in (250, 1000):
        _, no_better = simulate(trials, labels, gain=0.0, imdb_reviews=4315, imdb_disagree=0.01)
        assert no_better[Decision.promote] / trials <= 0.05
    first, better = simulate(trials, 1000, gain=0.03, imdb_reviews=4315, imdb_disagree=0.01)
    assert first[Decision.promote] / trials >= 0.80 and better[Decision.promote] / trials >= 0.80


def test_every_look_at_the_full_confidence_would_promote_too_often(monkeypatch) -> None:
    """Why the looks share the error: judged again and again at 90 %, a candidate that is no
    better is promoted more often than the 5 % that one look allows."""
    import bench.gate_simulation

    monkeypatch.setattr(bench.gate_simulation, "look_confidence", lambda confidence, _: confidence)
    _, no_better = simulate(1000, 1000, gain=0.0, imdb_reviews=4315, imdb_disagree=0.01)
    assert no_better[Decision.promote] / 1000 > 0.05
