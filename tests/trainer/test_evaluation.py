import pytest

from trainer.evaluation import classification_metrics


def test_metrics_of_a_known_confusion() -> None:
    labels = [1, 1, 1, 0, 0, 0, 0, 1]
    scores = [0.9, 0.8, 0.4, 0.3, 0.2, 0.6, 0.1, 0.7]
    metrics = classification_metrics(labels, scores)
    # predicted 1,1,0,0,0,1,0,1: tp=3, fn=1, fp=1, tn=3
    assert metrics["confusion_matrix"] == [[3, 1], [1, 3]]
    assert metrics["accuracy"] == pytest.approx(6 / 8)
    assert metrics["precision"] == pytest.approx(3 / 4)
    assert metrics["recall"] == pytest.approx(3 / 4)
    assert metrics["f1"] == pytest.approx(3 / 4)
    # 16 positive/negative pairs, 15 ranked the right way round (0.4 < 0.6 is the one wrong)
    assert metrics["roc_auc"] == pytest.approx(15 / 16)
    assert metrics["reviews"] == 8


def test_a_score_of_exactly_one_half_is_positive() -> None:
    assert classification_metrics([1, 0], [0.5, 0.49])["accuracy"] == 1.0


def test_one_class_only_has_no_auc() -> None:
    metrics = classification_metrics([1, 1], [0.9, 0.2])
    assert metrics["roc_auc"] is None and metrics["recall"] == 0.5
