"""Feedback from a shifted domain: accuracy there, and on the IMDb test split, before and after a
retraining run.

The shifted domain is IMDb written in an invented slang: the words most telling of each class in
the training reviews are replaced by made-up words (each reversed, plus "o": great -> taergo),
so the base model meets reviews whose sentiment rests on words it has never seen. The test split
is halved: users' feedback is simulated with shifted reviews of the first half and their true
labels, stored as feedback rows; the figures come from the second half only, shifted (the
domain) and untouched (IMDb), so no model is judged on a review it learned from in any form.
The run itself is the service's own (`trainer.retrain.retrain`, gate included).

    .venv/bin/python bench/retrain_shift.py --data ../shared/data/imdb/aclImdb_v1_labeled.tar.gz
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
from collections import Counter
from dataclasses import replace
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from sentiment_core.db import (
    Feedback,
    Review,
    ReviewStatus,
    RunTrigger,
    Sentiment,
    make_engine,
    make_sessionmaker,
)
from sentiment_core.migrate import upgrade_database
from sentiment_core.registry import get_version
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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", required=True)
    parser.add_argument("--var", default="var/bench-retrain-shift")
    parser.add_argument("--preset", default="best")
    parser.add_argument("--feedback", type=int, default=2000, help="shifted first-half reviews")
    parser.add_argument("--holdout", type=int, default=5000, help="shifted second-half reviews")
    args = parser.parse_args()

    var = Path(args.var).resolve()
    shutil.rmtree(var, ignore_errors=True)
    settings = Settings(var_dir=var, imdb_data=str(Path(args.data).resolve()))
    upgrade_database(settings)
    if PRESETS[args.preset].pretrained:  # the var was wiped: pretrain its word vectors again
        env = dict(os.environ, SENTIMENT_VAR=str(var), MODEL_DIR=str(settings.model_dir))
        command = [sys.executable, "-m", "sentiment_cli.main", "pretrain", "--data", args.data]
        subprocess.run(command, env=env, cwd=Path(__file__).resolve().parent.parent, check=True)
    dataset = load_dataset(Path(args.data))
    base = train_and_register(settings, dataset, TrainRequest(preset=args.preset))
    base_scorer = Scorer.load(base.version, Path(base.artifact_path))

    slang, shift = shifter(telling_words(dataset.train, SLANG_WORDS))
    test = dataset.test.sample(None, seed=7)
    half = len(test.texts) // 2
    field = Split(test.texts[:half], test.labels[:half]).sample(args.feedback, seed=7)
    fed = Split([shift(t) for t in field.texts], field.labels)
    judged = Split(test.texts[half:], test.labels[half:])
    held = judged.sample(args.holdout, seed=11)
    held = Split([shift(t) for t in held.texts], held.labels)

    engine = make_engine(settings.database_url)
    sessions = make_sessionmaker(engine)
    scores = base_scorer.score(fed.texts)
    with sessions() as session:
        for text, label, score in zip(fed.texts, fed.labels, scores, strict=True):
            predicted = Sentiment.of(score)
            review = Review(text=text, status=ReviewStatus.done, sentiment=predicted, score=score)
            review.feedback.append(
                Feedback(label=Sentiment.positive if label else Sentiment.negative)
            )
            session.add(review)
        session.commit()

    before = {
        "shifted_holdout": accuracy(base_scorer, held),
        "imdb_test_half": accuracy(base_scorer, judged),
    }
    run = retrain(replace(settings), trigger=RunTrigger.admin, reason="bench/retrain_shift.py")
    assert run is not None
    with sessions() as session:
        candidate = get_version(session, run.candidate_version)
    candidate_scorer = Scorer.load(candidate.version, Path(candidate.artifact_path))
    after = {
        "shifted_holdout": accuracy(candidate_scorer, held),
        "imdb_test_half": accuracy(candidate_scorer, judged),
    }
    engine.dispose()
    print(json.dumps({
        "preset": args.preset, "slang": slang, "run": RunPublic().dump(run),
        "before": before, "after": after,
    }, indent=2))  # fmt: skip
    print(f"\n{'':22}{'base ' + base.version:>14}{'candidate ' + candidate.version:>18}")
    for key in ("shifted_holdout", "imdb_test_half"):
        print(f"{key:22}{before[key]:>14.4f}{after[key]:>18.4f}")
    print(f"decision: {run.status.value}: {run.decision}")


if __name__ == "__main__":
    main()
