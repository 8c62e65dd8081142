"""Where a fine-tuned candidate's disagreement with its base on the gate's IMDb slice comes from
(issue 12), on the slang shift of `bench/retrain_shift.py`.

Run on the 2-core machine from the repository root (about 6 minutes), after

    .venv/bin/python bench/retrain_shift.py --data $D --base /tmp/bench9/models/v1 \\
        --pretrained /tmp/bench9/models/pretrained/p2 --shift slang --mode fine-tune --var /tmp/shift/slang-ft

with

    PYTHONPATH=.:bench .venv/bin/python docs/exploration/retrain-drift/drift.py \\
        --data ../shared/data/imdb/aclImdb_v1_labeled.tar.gz --models /tmp/shift/slang-ft/models

Part 1: the base (v1) and the candidate (v2), whole and with each branch silenced: how many of
the gate's 2,000 IMDb reviews they score differently, and their accuracy on the bench's 5,000
shifted reviews. Part 2: the n-gram regression alone, refitted (seconds each) on the base's own
training reviews, on those plus 1,400 of the bench's shifted feedback reviews, and on the
reviews a fine-tuning run gives it today (5,000 replayed ones re-split for validation, the
rest, and the feedback), at the served C = 100 and at C = 10.
"""

import argparse
import dataclasses
import random
from pathlib import Path

import numpy as np
from retrain_shift import SLANG_WORDS, shifter, telling_words

from sentiment_core.text import Preprocessor
from sentiment_inference.scoring import Scorer
from trainer.data import Split, load_dataset
from trainer.model import PRESETS
from trainer.ngrams import fit_regression, regression_scores

parser = argparse.ArgumentParser()
parser.add_argument("--data", type=Path, required=True)
parser.add_argument("--models", type=Path, required=True)
args = parser.parse_args()

data = load_dataset(args.data)
_, shift = shifter(telling_words(data.train, SLANG_WORDS))
test = data.test.sample(None, seed=7)  # as bench/retrain_shift.py draws its halves
half = len(test.texts) // 2
fed = Split(test.texts[:half], test.labels[:half]).sample(2000, seed=7)
fed = Split([shift(t) for t in fed.texts], fed.labels)
learned = fed.subset(random.Random(0).sample(range(2000), 1400))
held = Split(test.texts[half:], test.labels[half:]).sample(5000, seed=11)
held = Split([shift(t) for t in held.texts], held.labels)
gate, rest = data.train.hold_out(2000)


def right(predicted, split):
    return float((np.asarray(predicted) == np.asarray(split.labels)).mean())


print("part 1: base and candidate, by branch")
for without in (None, "lstm", "ngrams"):
    base, candidate = (
        Scorer.load(v, args.models / v, without=without) for v in ("v1", "v2")
    )
    b, c = (np.asarray(s.score(gate.texts)) >= 0.5 for s in (base, candidate))
    shifted = [right(np.asarray(s.score(held.texts)) >= 0.5, held) for s in (base, candidate)]
    print(
        f"  without {without}: gate disagree {int((b != c).sum())}, gate accuracy "
        f"{right(b, gate):.4f} -> {right(c, gate):.4f}, shifted {shifted[0]:.4f} -> {shifted[1]:.4f}"
    )

print("part 2: the n-gram regression alone, refitted")
fit, _ = rest.sample(None, 1).split_validation(0.1, 1)  # the base's (seed 1) training reviews
shuffled = rest.sample(None, 1337)  # as trainer/retrain.py replays them
replay, unreplayed = shuffled.subset(range(5000)), shuffled.subset(range(5000, len(rest.texts)))
replay_fit, _ = Split(
    replay.texts + learned.texts, replay.labels + learned.labels
).split_validation(0.1, 1337)
base_words, grown_words = (
    Preprocessor.load(args.models / v / "preprocessor.json") for v in ("v1", "v2")
)


def join(*splits):
    return Split(sum((s.texts for s in splits), []), sum((s.labels for s in splits), []))


for c in (100.0, 10.0):
    reference = None
    for name, words, split in (
        ("the base's reviews", base_words, fit),
        ("the base's reviews + feedback", grown_words, join(fit, learned)),
        ("a fine-tuning run's reviews + feedback", grown_words, join(replay_fit, unreplayed)),
    ):
        grown = len(words.vocab) - len(base_words.vocab)
        preset = dataclasses.replace(
            PRESETS["best"], num_words=PRESETS["best"].num_words + grown, ngram_c=c
        )
        table, bias = fit_regression(preset, words, (words.encode(split.texts), split.labels), 1)
        on_gate, on_held = (
            regression_scores(preset, table, words, words.encode(s.texts))[:, 0] + bias > 0
            for s in (gate, held)
        )
        reference = on_gate if reference is None else reference
        print(
            f"  C={c:g}, {name}: gate disagree {int((on_gate != reference).sum())}, gate "
            f"accuracy {right(on_gate, gate):.4f}, shifted {right(on_held, held):.4f}"
        )
