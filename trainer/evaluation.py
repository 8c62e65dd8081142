"""Classification metrics for a model's scores on labeled reviews."""

from __future__ import annotations

from collections.abc import Sequence

from sentiment_core.db import is_positive


def classification_metrics(labels: Sequence[int], scores: Sequence[float]) -> dict:
    """Accuracy, precision, recall and F1 of the positive class, ROC-AUC and the confusion
    matrix ([[true neg, false pos], [false neg, true pos]])."""
    import numpy as np
    from sklearn import metrics

    y = np.asarray(labels, dtype=int)
    p = np.asarray(scores, dtype=float)
    predicted = np.array([is_positive(score) for score in p], dtype=int)
    precision, recall, f1, _ = metrics.precision_recall_fscore_support(
        y, predicted, average="binary", zero_division=0
    )
    both_classes = len(set(y.tolist())) == 2
    return {
        "reviews": int(len(y)),
        "accuracy": float(metrics.accuracy_score(y, predicted)),
        "precision": float(precision),
        "recall": float(recall),
        "f1": float(f1),
        "roc_auc": float(metrics.roc_auc_score(y, p)) if both_classes else None,
        "confusion_matrix": metrics.confusion_matrix(y, predicted, labels=[0, 1]).tolist(),
    }
