"""Which reviews the label queue picks on a shift (issue 12): the class balance, the unknown
words and the base's accuracy of the 500 reviews that each ranking puts first, among the 5,000
scored reviews of a `bench/retrain_shift.py --pool 5000` run. Seconds, from the repository
root, after

    .venv/bin/python bench/retrain_shift.py --data $D --base /tmp/bench9/models/v1 \\
        --pretrained /tmp/bench9/models/pretrained/p2 --shift slang --slang-words 1000 \\
        --mode fine-tune --labels 500 --pool 5000 --var /tmp/shift10/slang1000-500-queue

with

    PYTHONPATH=. .venv/bin/python docs/exploration/label-queue/balance.py \\
        --data ../shared/data/imdb/aclImdb_v1_labeled.tar.gz \\
        --database /tmp/shift10/slang1000-500-queue/sentiment.db
"""

import argparse
import sqlite3
from pathlib import Path

import numpy as np

from trainer.data import Split, load_dataset

parser = argparse.ArgumentParser()
parser.add_argument("--data", type=Path, required=True)
parser.add_argument("--database", type=Path, required=True)
args = parser.parse_args()

data = load_dataset(args.data)
test = data.test.sample(None, seed=7)  # the pool, drawn as bench/retrain_shift.py draws it
half = len(test.texts) // 2
labels = np.array(Split(test.texts[:half], test.labels[:half]).sample(5000, seed=7).labels)
rows = sqlite3.connect(args.database).execute(
    "select score, unknown_share, length(text) from reviews order by id"
)
score, unknown, length = (np.array(column) for column in zip(*rows, strict=True))
unsure = 1 - 2 * np.abs(score - 0.5)

rankings = {
    "the queue (unsure + unknown share)": unsure + unknown,
    "unknown share alone": unknown,
    "unsure + unknown share scaled to 0..1": unsure + unknown / unknown.max(),
    "unknown words (share times length)": unknown * length,
    "random": np.random.default_rng(0).random(len(score)),
}
for name, priority in rankings.items():
    top = np.argsort(-priority, kind="stable")[:500]
    right = ((score[top] >= 0.5) == labels[top]).mean()
    print(
        f"{name:40} positive {labels[top].mean():.2f}  unknown share {unknown[top].mean():.3f}"
        f"  unsure {unsure[top].mean():.2f}  base right {right:.2f}"
    )
