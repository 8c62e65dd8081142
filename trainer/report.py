"""Reports written beside a model version: training curves, test metrics and their plots."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

from sentiment_core.db import THRESHOLD, Sentiment, is_positive

# Three reviews in the spirit of the seed notebook's `predict_sentiment` examples (its exact
# strings are not part of this repository): a clear positive, a clear negative, a mixed one.
EXAMPLE_REVIEWS = (
    "This movie was fantastic! The acting was great and the plot was thrilling.",
    "The movie was terrible. It was boring and way too long; I would not recommend it.",
    "The film had some good moments, but overall it was just average.",
)
MISCLASSIFIED_SHOWN = 10


def pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def write_json(path: Path, payload: object) -> None:
    path.write_text(json.dumps(payload, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")


def write_training_curves(folder: Path, history: dict[str, list[float]]) -> None:
    """The notebook's accuracy and loss curves, per epoch, for train and validation."""
    write_json(folder / "curves.json", history)
    plt = pyplot()
    fig, axes = plt.subplots(1, 2, figsize=(10, 4))
    epochs = range(1, len(history["loss"]) + 1)
    for ax, metric in zip(axes, ("accuracy", "loss"), strict=True):
        ax.plot(epochs, history[metric], marker="o", label="train")
        if f"val_{metric}" in history:
            ax.plot(epochs, history[f"val_{metric}"], marker="o", label="validation")
        ax.set(title=metric.capitalize(), xlabel="epoch", xticks=list(epochs))
        ax.legend()
    fig.tight_layout()
    fig.savefig(folder / "curves.png", dpi=100)
    plt.close(fig)


def write_test_report(
    folder: Path,
    metrics: dict,
    texts: Sequence[str],
    labels: Sequence[int],
    scores: Sequence[float],
    example_scores: Sequence[float],
) -> None:
    """Confusion matrix and ROC plots, the most confident mistakes, and the example reviews."""
    import numpy as np
    from sklearn.metrics import roc_curve

    plt = pyplot()
    fig, ax = plt.subplots(figsize=(4.5, 4))
    matrix = np.asarray(metrics["confusion_matrix"])
    ax.imshow(matrix, cmap="Blues")
    for (row, col), value in np.ndenumerate(matrix):
        color = "white" if value > matrix.max() / 2 else "black"
        ax.text(col, row, str(value), ha="center", va="center", color=color)
    ax.set(
        xticks=[0, 1], yticks=[0, 1], xticklabels=["negative", "positive"],
        yticklabels=["negative", "positive"], xlabel="predicted", ylabel="true",
        title=f"Confusion matrix (accuracy {metrics['accuracy']:.4f})",
    )  # fmt: skip
    fig.tight_layout()
    fig.savefig(folder / "confusion_matrix.png", dpi=100)
    plt.close(fig)

    if metrics["roc_auc"] is not None:
        fpr, tpr, _ = roc_curve(labels, scores)
        fig, ax = plt.subplots(figsize=(4.5, 4))
        ax.plot(fpr, tpr, label=f"AUC {metrics['roc_auc']:.4f}")
        ax.plot([0, 1], [0, 1], linestyle="--", color="grey")
        ax.set(xlabel="false positive rate", ylabel="true positive rate", title="ROC")
        ax.legend(loc="lower right")
        fig.tight_layout()
        fig.savefig(folder / "roc.png", dpi=100)
        plt.close(fig)

    confidence = [abs(s - THRESHOLD) for s in scores]
    wrong = [i for i, (y, s) in enumerate(zip(labels, scores, strict=True)) if is_positive(s) != y]
    wrong.sort(key=lambda i: -confidence[i])
    write_json(
        folder / "misclassified.json",
        [
            {"text": texts[i], "label": labels[i], "score": round(scores[i], 4)}
            for i in wrong[:MISCLASSIFIED_SHOWN]
        ],
    )
    write_json(
        folder / "examples.json",
        [
            {
                "text": text,
                "score": round(s, 4),
                "sentiment": Sentiment.of(s).value,
            }
            for text, s in zip(EXAMPLE_REVIEWS, example_scores, strict=True)
        ],
    )
