"""Word-level explanations: how faithful their weights are to the model, and what they cost, in
one run on the IMDb test reviews. Prints two markdown tables.

    PYTHONPATH=. .venv/bin/python bench/explain.py \\
        --data ../shared/data/imdb/aclImdb_v1_labeled.tar.gz --model var/models/v1

Faithfulness, in-process, on `--reviews` test reviews (a fixed sample, seed 2020), for
integrated gradients (the compiled path), occlusion (the same model with `attribute=None`) and
random weights on the words the model reads (a baseline):
- deleting the 5 words of highest |weight| against deleting 5 words drawn at random among the
  words the model reads (in its vocabulary and window; 5 draws per review, averaged): the ratio
  of the mean |change in score|, with a bootstrap 95% interval over reviews (target: >= 3);
- ERASER's comprehensiveness and sufficiency (DeYoung et al. 2020) for the top 10% of a review's
  words, ranked by weight toward the predicted class: p(class | review) less p(class | review
  without them), and less p(class | them alone).
A word is deleted by cutting its span out of the review (the pieces left are joined by spaces);
the edited reviews are scored by `Scorer.score`, the public scoring path.

Cost, on test reviews of 210-250 words (IMDb's mean is about 230):
(a) in-process `explain` time, p50/p95 after the scorer's warm-up (which compiles the padded
    widths explanations use, as a starting worker does; the first explanation's time is shown
    apart, to show that it compiles nothing);
(b) through a running service as `sentiment up` runs it (gunicorn web, Redis, SQLite, 1 scoring
    worker, and the explainer: a worker of its own for explanations, at a lower CPU priority)
    left otherwise idle: submit a review, wait until it is scored, POST its explanation and
    poll every 25 ms until it is done; p50/p95 of POST -> done (target: p50 <= 1 s). First, one
    review of each padded width, the first explanation of each: its time shows whether the
    explainer's warm-up left any to compile;
(c) the same service draining `--drain` test reviews submitted in requests of 20, alone and then
    while another thread requests explanations of already scored reviews (a new one each time)
    at 10 per second; scoring throughput with them over without (target: >= 0.8), in pairs run
    back to back, each drain starting once the explanations before it are done.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import random
import statistics
import sys
import threading
import time
import urllib.request
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import replace
from datetime import datetime
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from scoring import Service  # noqa: E402

from sentiment_core.db import (  # noqa: E402
    Explanation,
    ExplanationStatus,
    as_utc,
    is_positive,
    utcnow,
)
from sentiment_core.settings import Settings  # noqa: E402
from sentiment_core.text import token_spans, tokenize  # noqa: E402
from trainer.data import load_dataset  # noqa: E402

SEED = 2020  # the review sample, the random deletions and weights, and the bootstrap
TOP = 5  # words deleted, by weight or at random
DRAWS = 5  # random deletions per review, averaged
FRACTION = 0.1  # ERASER's share of a review's words for comprehensiveness and sufficiency
RESAMPLES = 2000  # bootstrap resamples of the reviews
WORDS = (210, 250)  # "about 230 words" for the cost measures
SCORE_BATCH = 1024  # edited reviews per `Scorer.score` call, what a busy worker gathers
POLL_S = 0.025  # between GETs while waiting on the service
EXPLAIN_RATE = 10.0  # explanations requested per second during a drain
SUBMIT_BATCH = 20  # reviews per request during a drain: many messages, many batches


def read_positions(preprocessor, spans: list[tuple[str, int, int]]) -> list[int]:
    """Positions of the words the model reads: in its vocabulary and in its window."""
    known = [k for k, (word, _, _) in enumerate(spans) if preprocessor.index_of(word) is not None]
    return known[-preprocessor.max_len :]


def cut(text: str, spans: list[tuple[str, int, int]], drop: Sequence[int]) -> str:
    """`text` without the words at positions `drop`: the pieces around them, joined by spaces."""
    pieces, at = [], 0
    for k in sorted(drop):
        pieces.append(text[at : spans[k][1]])
        at = spans[k][2]
    edited = " ".join([*pieces, text[at:]])
    dropped = set(drop)
    assert tokenize(edited) == [w for k, (w, _, _) in enumerate(spans) if k not in dropped]
    return edited


def score(scorer, texts: list[str]) -> np.ndarray:
    batches = [
        scorer.score(texts[at : at + SCORE_BATCH]) for at in range(0, len(texts), SCORE_BATCH)
    ]
    return np.concatenate(batches)


def bootstrap(statistic: Callable, *columns: np.ndarray) -> tuple[float, float, float]:
    """The statistic over all reviews, and its 95% percentile interval over resampled reviews."""
    rows = np.random.default_rng(SEED).integers(0, len(columns[0]), (RESAMPLES, len(columns[0])))
    values = [statistic(*(c[r] for c in columns)) for r in rows]
    low, high = np.percentile(values, [2.5, 97.5])
    return float(statistic(*columns)), float(low), float(high)


def weights_of(scorer, texts: list[str], agree: list[float]) -> list[list[float]]:
    """Each review's word weights by `explain`; notes how far its score is from `Scorer.score`'s."""
    from sentiment_inference.explain import explain

    explained = [explain(scorer, text) for text in texts]
    agree.append(float(np.max(np.abs(score(scorer, texts) - [e.score for e in explained]))))
    return [[token["weight"] for token in e.tokens] for e in explained]


def faithfulness(scorer, texts: list[str]) -> tuple[list[tuple], float]:
    """Per kind of weights: mean abs(score change) deleting the top words and random ones, their
    ratio, comprehensiveness and sufficiency (each with its interval); and the largest gap
    between an explanation's score and `Scorer.score`'s."""
    rng = random.Random(SEED)
    spans = [token_spans(t) for t in texts]
    read = [read_positions(scorer.preprocessor, s) for s in spans]
    full = score(scorer, texts)
    toward = np.where([is_positive(p) for p in full], 1.0, -1.0)  # the predicted class's sign
    draws = [
        cut(t, s, rng.sample(r, min(TOP, len(r))))
        for t, s, r in zip(texts, spans, read, strict=True)
        for _ in range(DRAWS)
    ]
    at_random = np.abs(score(scorer, draws).reshape(len(texts), DRAWS) - full[:, None]).mean(axis=1)

    def of_class(p: np.ndarray) -> np.ndarray:
        return np.where(toward > 0, p, 1 - p)

    agree: list[float] = []
    kinds = {
        "integrated gradients": weights_of(scorer, texts, agree),
        "occlusion": weights_of(replace(scorer, attribute=None), texts, agree),
        "random (normal) weights on the words read": [
            [rng.gauss(0, 1) if k in r else 0.0 for k in range(len(s))]
            for s, r in zip(spans, map(set, read), strict=True)
        ],
    }
    rows = []
    for name, all_weights in kinds.items():
        edits = []
        for i, (text, s, weights) in enumerate(zip(texts, spans, all_weights, strict=True)):
            unread = set(range(len(s))) - set(read[i])
            assert not any(weights[k] for k in unread), "a word the model does not read has weight"
            top = sorted(read[i], key=lambda k: -abs(weights[k]))[:TOP]
            rank = sorted(range(len(s)), key=lambda k: -toward[i] * weights[k])
            kept = rank[: math.ceil(FRACTION * len(s))]
            edits += [cut(text, s, top), cut(text, s, kept), cut(text, s, rank[len(kept) :])]
        top_p, without, alone = score(scorer, edits).reshape(len(texts), 3).T
        moved = np.abs(top_p - full)
        rows.append(
            (
                name,
                float(moved.mean()),
                float(at_random.mean()),
                bootstrap(lambda a, b: a.mean() / b.mean(), moved, at_random),
                bootstrap(np.mean, of_class(full) - of_class(without)),
                bootstrap(np.mean, of_class(full) - of_class(alone)),
            )
        )
    return rows, max(agree)


def interval(value: tuple[float, float, float], digits: int) -> str:
    return "{0:.{3}f} [{1:.{3}f}, {2:.{3}f}]".format(*value, digits)


def percentile(values: list[float], q: int) -> float:
    return statistics.quantiles(values, n=100, method="inclusive")[q - 1]


def one_per_width(preprocessor, texts: list[str]) -> list[str]:
    """A review for each padded width that explanations meet (the compiled path compiles each
    width once), narrowest first."""
    from sentiment_inference.scoring import attribution_width

    def width(text: str) -> int:
        return attribution_width(len(read_positions(preprocessor, token_spans(text))))

    every = {attribution_width(w) for w in range(1, preprocessor.max_len + 1)}
    found: dict[int, str] = {}
    for text in texts:
        found.setdefault(width(text), text)
        if len(found) == len(every):
            break
    return [found[w] for w in sorted(found)]


def explain_times(scorer, texts: list[str]) -> tuple[float, list[float]]:
    """Seconds for the first explanation, then for each of `texts` once every width among them
    has been explained once."""
    from sentiment_inference.explain import explain

    def timed(text: str) -> float:
        started = time.perf_counter()
        explain(scorer, text)
        return time.perf_counter() - started

    first = timed(texts[0])
    for text in one_per_width(scorer.preprocessor, texts):
        explain(scorer, text)
    return first, [timed(text) for text in texts]


def call(service: Service, path: str, method: str = "GET") -> dict:
    request = urllib.request.Request(
        service.base + path, data=b"" if method == "POST" else None, method=method
    )
    with urllib.request.urlopen(request, timeout=30) as response:
        return json.load(response)


def poll(service: Service, path: str, timeout: float = 120) -> dict:
    """GET `path` every POLL_S until its status is no longer a waiting one."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        body = call(service, path)
        if body["status"] not in ("queued", "scoring"):
            return body
        time.sleep(POLL_S)
    raise RuntimeError(f"{path} still waiting after {timeout} s")


def explanation_latency(service: Service, texts: list[str]) -> list[tuple[float, float, str]]:
    """Per review: seconds from POSTing its explanation to seeing it done, the server's own
    (created to updated), and the outcome."""
    out = []
    for text in texts:
        review = service.submit([text])["id"]
        poll(service, f"/api/v1/reviews/{review}")
        started = time.perf_counter()
        body = call(service, f"/api/v1/reviews/{review}/explanation", "POST")
        if body["status"] == "queued":
            body = poll(service, f"/api/v1/reviews/{review}/explanation")
        wall = time.perf_counter() - started
        made, done = (datetime.fromisoformat(body[k]) for k in ("created_at", "updated_at"))
        out.append((wall, (done - made).total_seconds(), f"{body['status']} {body['method']}"))
    return out


def explanations_pending(service: Service) -> int:
    from sqlalchemy import func, select

    with service.sessions() as session:
        queued = Explanation.status == ExplanationStatus.queued
        return session.scalar(select(func.count()).where(queued))


def drain(service: Service, texts: list[str], pool: list[int]) -> tuple[float, int, int, float]:
    """Reviews per second scoring `texts`, submitted SUBMIT_BATCH to a request, while another
    thread requests explanations of the `pool`'s scored reviews, EXPLAIN_RATE a second (none
    when it is empty). Also returns how many explanations were requested, how many were done
    by the drain's end, and the median seconds from their request to done."""
    from sqlalchemy import select

    while explanations_pending(service):  # start from an idle worker
        time.sleep(0.2)
    before = service.count_finished()
    stop = threading.Event()
    asked: list[int] = []

    def request_explanations() -> None:
        started = time.perf_counter()
        for n, review in enumerate(pool):
            if stop.wait(max(0.0, started + n / EXPLAIN_RATE - time.perf_counter())):
                return
            call(service, f"/api/v1/reviews/{review}/explanation", "POST")
            asked.append(review)

    asking = threading.Thread(target=request_explanations)
    started = time.perf_counter()
    asking.start()
    for at in range(0, len(texts), SUBMIT_BATCH):
        service.submit(texts[at : at + SUBMIT_BATCH])
    if not service.wait_done(before + len(texts), 900):
        raise RuntimeError("the drain's reviews were not all scored in time")
    seconds, ended = time.perf_counter() - started, utcnow()
    stop.set()
    asking.join()
    deadline = time.monotonic() + 600
    while explanations_pending(service) and time.monotonic() < deadline:
        time.sleep(0.2)
    with service.sessions() as session:
        rows = session.execute(
            select(Explanation.created_at, Explanation.updated_at).where(
                Explanation.review_id.in_(asked), Explanation.status == ExplanationStatus.done
            )
        ).all()
    waits = [(as_utc(done) - as_utc(made)).total_seconds() for made, done in rows]
    return (
        len(texts) / seconds,
        len(asked),
        sum(as_utc(done) <= ended for _, done in rows),
        statistics.median(waits) if waits else float("nan"),
    )


def in_service(
    model: Path,
    widths: list[str],
    timed: list[str],
    drained: list[str],
    pool: list[str],
    pairs: int,
):
    """Cost (b) and (c) on a service as `sentiment up` runs it (1 scoring worker, the explainer),
    after the explainer has explained a review of each width (also returned)."""
    service = Service(model, workers=1, batch=Settings().batch_size, explainer=True)
    try:
        cold = explanation_latency(service, widths)
        latency = explanation_latency(service, timed)
        scored, before = [], service.count_finished()
        for at in range(0, len(pool), SUBMIT_BATCH):
            scored += service.submit(pool[at : at + SUBMIT_BATCH])["ids"]
        if not service.wait_done(before + len(pool), 300):
            raise RuntimeError("the explanation pool was not scored in time")
        share = len(scored) // pairs
        drains = [
            (
                drain(service, drained, []),
                drain(service, drained, scored[k * share : (k + 1) * share]),
            )
            for k in range(pairs)
        ]
        return cold, latency, drains, share
    finally:
        service.close()


def ms(values: list[float]) -> str:
    return (
        f"p50 {percentile(values, 50) * 1000:,.0f} ms, p95 {percentile(values, 95) * 1000:,.0f} ms"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", required=True, type=Path)
    parser.add_argument("--model", required=True, type=Path, help="A model version folder.")
    parser.add_argument("--reviews", type=int, default=500, help="For faithfulness.")
    parser.add_argument("--timed", type=int, default=40, help="Reviews for cost (a) and (b).")
    parser.add_argument("--drain", type=int, default=6000, help="Reviews per drain, cost (c).")
    parser.add_argument("--pool", type=int, default=600, help="Reviews to explain per drain.")
    parser.add_argument("--pairs", type=int, default=3, help="Drains alone and loaded.")
    parser.add_argument("--skip-service", action="store_true", help="Only the in-process part.")
    args = parser.parse_args()

    from sentiment_inference.scoring import Scorer

    shuffled = load_dataset(args.data).test.sample(None, SEED).texts
    sample = shuffled[: args.reviews]
    timed = [t for t in shuffled if WORDS[0] <= len(tokenize(t)) <= WORDS[1]][: args.timed]
    scorer = Scorer.load(args.model.name, args.model)
    scorer.warm_up()  # as an explaining worker does when it starts: attributions compiled
    scorer.compile_all()
    first, ig_times = explain_times(scorer, timed)
    _, occlusion_times = explain_times(replace(scorer, attribute=None), timed)
    rows, gap = faithfulness(scorer, sample)

    print(f"model {args.model}, {os.cpu_count()} CPUs; {len(sample)} test reviews (seed {SEED})")
    print(f"(explanations' scores within {gap:.1e} of `Scorer.score`)\n")
    print(
        f"| weights | top {TOP} deleted: mean abs(change in score) | {TOP} at random "
        f"({DRAWS} draws) | ratio [95% CI] (target >= 3) | comprehensiveness, top "
        f"{FRACTION:.0%} [95% CI] | sufficiency, top {FRACTION:.0%} [95% CI] |"
    )
    print("| --- | ---: | ---: | ---: | ---: | ---: |")
    for name, moved, at_random, ratio, comprehensive, sufficient in rows:
        print(
            f"| {name} | {moved:.4f} | {at_random:.4f} | {interval(ratio, 2)} "
            f"| {interval(comprehensive, 3)} | {interval(sufficient, 3)} |"
        )

    print(
        f"\n| cost, on {len(timed)} test reviews of {WORDS[0]}-{WORDS[1]} words | result | target |"
    )
    print("| --- | --- | --- |")
    print(
        f"| (a) in-process, integrated gradients | {ms(ig_times)} (the first: "
        f"{first * 1000:,.0f} ms) | |"
    )
    print(f"| (a) in-process, occlusion | {ms(occlusion_times)} | |", flush=True)
    if args.skip_service:
        return
    drained = shuffled[: args.drain]
    pool = shuffled[args.drain : args.drain + args.pool * args.pairs]
    widths = one_per_width(scorer.preprocessor, shuffled[args.drain + len(pool) :])
    cold, latency, drains, share = in_service(args.model, widths, timed, drained, pool, args.pairs)
    print(
        f"| (b) service: the first explanation of each of {len(widths)} "
        f"padded widths | server-side at most {max(s for _, s, _ in cold) * 1000:,.0f} ms | |"
    )
    walls = [wall for wall, _, _ in latency]
    outcomes = ", ".join(f"{n} {o}" for o, n in Counter(o for _, _, o in latency).items())
    print(
        f"| (b) service, then: POST explanation -> seen done | {ms(walls)}; "
        f"server-side {ms([s for _, s, _ in latency])}; "
        f"{outcomes} | p50 <= 1 s |"
    )
    for k, ((alone, *_), (loaded, asked, done, wait)) in enumerate(drains, 1):
        ran_out = " (all the pool: it ran out)" if asked == share else ""
        print(
            f"| (c) pair {k}: drain of {len(drained):,} reviews alone, then "
            f"with explanations requested at {EXPLAIN_RATE:.0f}/s | {alone:,.0f} then "
            f"{loaded:,.0f} reviews/s = {loaded / alone:.2f}; {asked} explanations "
            f"requested{ran_out}, {done} done by the drain's end (request -> done: p50 "
            f"{wait:.1f} s) | >= 0.80 |"
        )


if __name__ == "__main__":
    main()
