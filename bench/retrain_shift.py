"""Feedback from a shifted domain: accuracy there, and on the IMDb test split, before and after a
retraining run, with the gate's evidence and the run's time.

Two shifts, each one the base model never saw:

- `slang`: IMDb written in an invented slang. The words most telling of each class in the
  training reviews (`--slang-words` of each, 150 unless told) are replaced by made-up words
  (each reversed, plus "o": great -> taergo), so the base model meets reviews whose sentiment
  rests on words it has never seen.
- `sentences`: one-line reviews, each test review cut to its last sentence.

The test split is halved: users' feedback is simulated with shifted reviews of the first half
and their true labels, stored as feedback rows; the figures come from the second half only,
shifted (the domain) and untouched (IMDb), so no model is judged on a review it learned from in
any form. With `--pool N`, N shifted first-half reviews are scored and stored, and the `--labels`
of them that the service's label queue ranks first get their labels (else a random `--labels`);
`--draw` seeds which reviews are pooled or labeled, for the spread over draws.
The run itself is the service's own (`trainer.retrain.retrain`, gate included), in
`--mode fine-tune` or `scratch`; its shadow period is skipped.

    .venv/bin/python bench/retrain_shift.py --data ../shared/data/imdb/aclImdb_v1_labeled.tar.gz \
        --base var/models/v1 --pretrained var/models/pretrained/p1 --shift slang --mode fine-tune

`--base` starts from a trained model folder instead of training the preset first, and
`--pretrained` from a pretraining artifact instead of running `sentiment pretrain`.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import re
import shutil
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from models import last_sentence  # noqa: E402  (bench/, beside this file)

from sentiment_core.db import (
    Feedback,
    Review,
    ReviewStatus,
    RunTrigger,
    Sentiment,
    make_engine,
    make_sessionmaker,
)
from sentiment_core.labeling import label_queue
from sentiment_core.migrate import upgrade_database
from sentiment_core.registry import get_version, register_version
from sentiment_core.schemas import RunPublic
from sentiment_core.settings import Settings
from sentiment_core.text import tokenize
from sentiment_inference.scoring import Scorer
from trainer.data import Split, load_dataset
from trainer.evaluation import classification_metrics
from trainer.model import PRESETS
from trainer.retrain import retrain
from trainer.train import TrainRequest, train_and_register

SLANG_WORDS = 150  # per class


def telling_words(split: Split, per_class: int, min_count: int = 30) -> list[str]:
    """The words whose presence most shifts the odds towards one class, per class."""
    counts = [Counter(), Counter()]
    for text, label in zip(split.texts, split.labels, strict=True):
        counts[label].update(set(tokenize(text)))
    words = [
        w for w in counts[0].keys() | counts[1].keys() if counts[0][w] + counts[1][w] >= min_count
    ]
    odds = {w: math.log((counts[1][w] + 1) / (counts[0][w] + 1)) for w in words}
    ranked = sorted(words, key=lambda w: odds[w])
    return ranked[:per_class] + ranked[-per_class:]


def shifter(words: list[str]):
    slang = {w: w[::-1] + "o" for w in words}
    pattern = re.compile(r"\b(" + "|".join(map(re.escape, words)) + r")\b", re.IGNORECASE)
    return slang, lambda text: pattern.sub(lambda m: slang[m.group(0).lower()], text)


def accuracy(scorer: Scorer, split: Split) -> float:
    return classification_metrics(split.labels, scorer.score(split.texts))["accuracy"]


def base_model(settings: Settings, args, dataset) -> str:
    """The base model's version: `--base` registered as it is, or the preset trained (after
    pretraining, where it needs it and `--pretrained` gives none)."""
    if args.pretrained:
        shutil.copytree(args.pretrained, settings.pretrained_dir / Path(args.pretrained).name)
    elif PRESETS[args.preset].pretrained:
        env = dict(os.environ, SENTIMENT_VAR=str(settings.var_dir))
        command = [sys.executable, "-m", "sentiment_cli.main", "pretrain", "--data", args.data]
        subprocess.run(command, env=env, cwd=Path(__file__).resolve().parent.parent, check=True)
    if not args.base:
        return train_and_register(settings, dataset, TrainRequest(preset=args.preset)).version
    staged = settings.model_dir / ".staging-base"
    shutil.copytree(args.base, staged)
    metrics = json.loads((staged / "report" / "metrics.json").read_text())
    engine = make_engine(settings.database_url)
    with make_sessionmaker(engine)() as session:
        row = register_version(
            session, staged_dir=staged, model_dir=settings.model_dir, preset=args.preset,
            metrics=metrics,
        )  # fmt: skip
        version = row.version
    engine.dispose()
    return version


def store_feedback(
    sessions, scorer: Scorer, fed: Split, labels: int, queue: bool, holdout: float
) -> None:
    """Store the shifted reviews as scored; label `labels` of them: those the label queue ranks
    first when `queue`, else the first ones (a random sample)."""
    with sessions() as session:
        reviews = [
            Review(
                text=text, status=ReviewStatus.done, sentiment=Sentiment.of(score), score=score,
                unknown_words=read.unknown, unknown_share=read.share, new_words=read.new_words,
            )
            for text, (score, read) in zip(fed.texts, scorer.read_and_score(fed.texts), strict=True)
        ]  # fmt: skip
        session.add_all(reviews)
        session.commit()
        label_of = {r.id: label for r, label in zip(reviews, fed.labels, strict=True)}
    chosen = (
        [r.id for r in label_queue(sessions=sessions, limit=labels, holdout=holdout)]
        if queue
        else [r.id for r in reviews[:labels]]
    )
    with sessions() as session:
        for review_id in chosen:
            label = Sentiment.positive if label_of[review_id] else Sentiment.negative
            session.add(Feedback(review_id=review_id, label=label, client="bench"))
        session.commit()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", required=True)
    parser.add_argument("--var", default="var/bench-retrain-shift")
    parser.add_argument("--preset", default="best")
    parser.add_argument("--base", type=Path, help="a trained model folder to start from")
    parser.add_argument("--pretrained", type=Path, help="a pretraining artifact folder")
    parser.add_argument("--shift", choices=["slang", "sentences"], default="slang")
    parser.add_argument(
        "--slang-words", type=int, default=SLANG_WORDS, help="words replaced, per class"
    )
    parser.add_argument("--mode", choices=["fine-tune", "scratch"], default="fine-tune")
    parser.add_argument("--labels", type=int, default=2000, help="labeled first-half reviews")
    parser.add_argument("--pool", type=int, default=0, help="labels are chosen from this many")
    parser.add_argument(
        "--chosen-by", choices=["queue", "random"], default="queue", help="with --pool"
    )
    parser.add_argument("--holdout", type=int, default=5000, help="shifted second-half reviews")
    parser.add_argument(
        "--draw", type=int, default=7, help="seeds the draw of the labeled (or pooled) reviews"
    )
    args = parser.parse_args()

    var = Path(args.var).resolve()
    shutil.rmtree(var, ignore_errors=True)
    settings = Settings(
        var_dir=var, imdb_data=str(Path(args.data).resolve()), retrain_mode=args.mode,
        shadow_period_s=0,
    )  # fmt: skip
    upgrade_database(settings)
    dataset = load_dataset(Path(args.data))
    base = base_model(settings, args, dataset)
    base_scorer = Scorer.load(base, settings.model_dir / base)

    slang: dict[str, str] = {}
    if args.shift == "slang":
        slang, shift = shifter(telling_words(dataset.train, args.slang_words))
    else:
        shift = last_sentence
    test = dataset.test.sample(None, seed=7)
    half = len(test.texts) // 2
    field = Split(test.texts[:half], test.labels[:half]).sample(
        args.pool or args.labels, seed=args.draw
    )
    fed = Split([shift(t) for t in field.texts], field.labels)
    judged = Split(test.texts[half:], test.labels[half:])
    held = judged.sample(args.holdout, seed=11)
    held = Split([shift(t) for t in held.texts], held.labels)

    engine = make_engine(settings.database_url)
    sessions = make_sessionmaker(engine)
    queue = bool(args.pool) and args.chosen_by == "queue"
    store_feedback(sessions, base_scorer, fed, args.labels, queue, settings.feedback_holdout)
    before = {
        "shifted_holdout": accuracy(base_scorer, held),
        "imdb_test_half": accuracy(base_scorer, judged),
    }
    started = time.monotonic()
    run = retrain(settings, trigger=RunTrigger.admin, reason="bench/retrain_shift.py")
    seconds = time.monotonic() - started
    assert run is not None
    with sessions() as session:
        candidate = get_version(session, run.candidate_version)
    candidate_scorer = Scorer.load(candidate.version, Path(candidate.artifact_path))
    after = {
        "shifted_holdout": accuracy(candidate_scorer, held),
        "imdb_test_half": accuracy(candidate_scorer, judged),
    }
    engine.dispose()
    cost = before["imdb_test_half"] - before["shifted_holdout"]
    recovered = (after["shifted_holdout"] - before["shifted_holdout"]) / cost if cost else None
    print(json.dumps({
        "preset": args.preset, "shift": args.shift, "slang_words": args.slang_words,
        "mode": args.mode, "labels": args.labels,
        "chosen_by": "queue" if queue else "random", "pool": args.pool, "draw": args.draw,
        "slang": slang, "run": RunPublic().dump(run), "run_seconds": round(seconds, 1),
        "self_trained_reviews": candidate.metrics.get("self_trained_reviews"),
        "before": before, "after": after, "recovered": recovered,
    }, indent=2))  # fmt: skip
    print(f"\n{'':22}{'base ' + base:>14}{'candidate ' + candidate.version:>18}")
    for key in ("shifted_holdout", "imdb_test_half"):
        print(f"{key:22}{before[key]:>14.4f}{after[key]:>18.4f}")
    print(f"recovered: {recovered}; run: {seconds / 60:.1f} min")
    print(f"decision: {run.status.value}: {run.decision}")


if __name__ == "__main__":
    main()
