"""Exploratory analysis of a training set, written beside the model version it produced."""

from __future__ import annotations

import math
from collections import Counter
from pathlib import Path

from sentiment_core.text import Preprocessor, tokenize
from trainer.data import Split
from trainer.report import pyplot, write_json

TELLING_WORDS = 20
TELLING_MIN_SHARE = 0.01  # a word must occur this often per review: rarer ones (names) are noise
SAMPLES_PER_CLASS = 2
SAMPLE_CHARS = 400


def analyse(split: Split, preprocessor: Preprocessor, folder: Path) -> dict:
    """Class balance, lengths against the model's window, vocabulary coverage, the most telling
    words per class and a few samples: `eda.json` and `eda.png` in `folder`."""
    import numpy as np

    tokens = [tokenize(text) for text in split.texts]
    words = np.array([len(text.split()) for text in split.texts])
    lengths = np.array([len(t) for t in tokens])
    vocab = set(preprocessor.vocab)
    in_vocab = np.array([sum(word in vocab for word in seq) for seq in tokens], dtype=float)
    counts = {0: Counter[str](), 1: Counter[str]()}
    for seq, label in zip(tokens, split.labels, strict=True):
        counts[label].update(seq)
    window = preprocessor.max_len
    summary = {
        "reviews": len(split.texts),
        "class_balance": {
            "positive": int(sum(split.labels)),
            "negative": len(split.labels) - int(sum(split.labels)),
        },
        "words": describe(words),
        "tokens": describe(lengths),
        "window_tokens": window,
        "share_truncated": float(np.mean(in_vocab > window)) if len(in_vocab) else 0.0,
        "vocabulary_size": preprocessor.num_words,
        "vocabulary_coverage": float(in_vocab.sum() / max(1, lengths.sum())),
        "telling_words": telling_words(counts, max(5, int(len(tokens) * TELLING_MIN_SHARE))),
        "samples": {
            name: [t[:SAMPLE_CHARS] for t, y in zip(split.texts, split.labels, strict=True)
                   if y == label][:SAMPLES_PER_CLASS]
            for name, label in (("positive", 1), ("negative", 0))
        },
    }  # fmt: skip
    write_json(folder / "eda.json", summary)
    plot(folder / "eda.png", summary, lengths, in_vocab, window)
    return summary


def describe(values) -> dict:
    import numpy as np

    if not len(values):
        return {}
    return {
        "mean": float(np.mean(values)),
        "median": float(np.median(values)),
        "p90": float(np.percentile(values, 90)),
        "max": int(np.max(values)),
    }


def telling_words(counts: dict[int, Counter[str]], min_count: int) -> dict[str, list[list]]:
    """Words, seen at least `min_count` times, whose smoothed log-odds of appearing in one class
    over the other is highest."""
    totals = {label: sum(c.values()) + len(c) for label, c in counts.items()}
    ratios = []
    for word in counts[0].keys() | counts[1].keys():
        pos, neg = counts[1][word], counts[0][word]
        if pos + neg >= min_count:
            ratio = math.log((pos + 1) / totals[1]) - math.log((neg + 1) / totals[0])
            ratios.append((ratio, word))
    ratios.sort()
    return {
        "positive": [[w, round(r, 3)] for r, w in reversed(ratios[-TELLING_WORDS:])],
        "negative": [[w, round(-r, 3)] for r, w in ratios[:TELLING_WORDS]],
    }


def plot(path: Path, summary: dict, lengths, in_vocab, window: int) -> None:
    plt = pyplot()
    fig, axes = plt.subplots(2, 2, figsize=(11, 8))
    balance = summary["class_balance"]
    axes[0, 0].bar(list(balance), list(balance.values()), color=["tab:green", "tab:red"])
    axes[0, 0].set(title="Class balance", ylabel="reviews")
    top = max(1, int(max(lengths.max(), 1)))
    bins = range(0, min(top, 1200) + 25, 25)
    axes[0, 1].hist([lengths, in_vocab], bins=bins, label=["all tokens", "in vocabulary"])
    axes[0, 1].axvline(window, color="black", linestyle="--", label=f"window ({window})")
    axes[0, 1].set(
        title=f"Review length ({summary['share_truncated']:.0%} truncated)", xlabel="tokens"
    )
    axes[0, 1].legend()
    for ax, name, color in (
        (axes[1, 0], "positive", "tab:green"),
        (axes[1, 1], "negative", "tab:red"),
    ):
        pairs = summary["telling_words"][name][:15]
        ax.barh([w for w, _ in reversed(pairs)], [r for _, r in reversed(pairs)], color=color)
        ax.set(title=f"Most {name} words (log-odds)")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
