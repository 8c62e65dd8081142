import json
from pathlib import Path

from sqlalchemy import select

from sentiment_core.db import ModelVersion, make_engine, make_sessionmaker
from sentiment_core.registry import active_version, artifact_sha256
from sentiment_inference.scoring import Scorer
from tests.factories import NEGATIVE, POSITIVE


def test_tiny_training_registers_a_version_that_learned_the_reviews(
    tiny_artifact: Path,
    settings,
    sessions,
    tiny_model,
) -> None:
    with sessions() as session:
        row = active_version(session)
    assert row.version == tiny_model
    assert row.artifact_sha256 == artifact_sha256(Path(row.artifact_path))
    scorer = Scorer.load(row.version, Path(row.artifact_path), row.artifact_sha256)
    scores = scorer.score(POSITIVE + NEGATIVE)
    assert all(s > 0.5 for s in scores[: len(POSITIVE)])
    assert all(s < 0.5 for s in scores[len(POSITIVE) :])


def test_training_records_its_metrics(tiny_training) -> None:
    training_settings, _ = tiny_training
    engine = make_engine(training_settings.database_url)
    with make_sessionmaker(engine)() as session:
        metrics = session.scalars(select(ModelVersion.metrics)).one()
    engine.dispose()
    assert metrics["test_accuracy"] == metrics["test"]["accuracy"] == 1.0
    # 2 of the 12 written reviews (a fifth at most) are the retraining gate's fixed held-out slice.
    assert metrics["train_reviews"] == 10 and metrics["parameters"] > 0
    assert metrics["preset"]["units"] == 8 and metrics["seed"] == 1337


def test_training_writes_the_reports(tiny_artifact: Path) -> None:
    report = tiny_artifact / "report"
    for plot in ("eda.png", "curves.png", "confusion_matrix.png", "roc.png"):
        assert (report / plot).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n", plot
    eda = json.loads((report / "eda.json").read_text())
    assert eda["class_balance"] == {"positive": 5, "negative": 5}
    assert eda["window_tokens"] == 50 and eda["share_truncated"] == 0.0
    assert eda["vocabulary_coverage"] == 1.0
    assert set(eda["samples"]) == {"positive", "negative"}
    curves = json.loads((report / "curves.json").read_text())
    assert len(curves["accuracy"]) == len(curves["loss"]) == 30
    metrics = json.loads((report / "metrics.json").read_text())
    assert metrics["test"]["accuracy"] == 1.0 and metrics["test"]["roc_auc"] == 1.0
    assert metrics["test"]["confusion_matrix"] == [[6, 0], [0, 6]]
    assert json.loads((report / "misclassified.json").read_text()) == []
    examples = json.loads((report / "examples.json").read_text())
    assert len(examples) == 3 and all(e["sentiment"] in ("positive", "negative") for e in examples)


def test_training_is_deterministic_given_a_seed(tmp_path) -> None:
    from tests.factories import tiny_dataset
    from trainer.train import TrainRequest, train_into

    results = []
    for name, seed in (("a", 7), ("b", 7), ("c", 8)):
        folder = tmp_path / name
        (folder / "report").mkdir(parents=True)
        metrics, _, _ = train_into(
            folder, tiny_dataset(), TrainRequest("tiny", epochs=3, seed=seed)
        )
        results.append(metrics["history"]["loss"])
    assert results[0] == results[1]
    assert results[0] != results[2]


def test_training_self_trains_on_the_unlabeled_reviews_its_regression_is_sure_of(tmp_path):
    from tests.factories import UNLABELED, tiny_dataset
    from trainer.train import TrainRequest, train_into

    (tmp_path / "report").mkdir()
    request = TrainRequest("tiny", unlabeled=tuple(UNLABELED))
    metrics, fingerprint, _ = train_into(tmp_path, tiny_dataset(), request)
    assert 0 < metrics["self_trained_reviews"] <= len(UNLABELED)
    assert fingerprint != tiny_dataset().train.fingerprint()


def test_training_from_scratch_learns_the_feedback_and_its_words(tmp_path) -> None:
    from tests.factories import new_word_reviews, tiny_dataset
    from trainer.data import Split
    from trainer.train import TrainRequest, train_into

    feedback = Split(new_word_reviews("zorgly") + new_word_reviews("blorft"), [1] * 40 + [0] * 40)
    fingerprints = []
    for name, given in (("without", Split()), ("with", feedback)):
        folder = tmp_path / name
        (folder / "report").mkdir(parents=True)
        _, fingerprint, scorer = train_into(
            folder, tiny_dataset(), TrainRequest("tiny", feedback=given)
        )
        fingerprints.append(fingerprint)
    assert scorer.preprocessor.knows("zorgly") and scorer.preprocessor.knows("blorft")
    unseen = ["the soundtrack was zorgly", "the editing was blorft"]
    assert [s >= 0.5 for s in scorer.score(unseen)] == [True, False]
    assert fingerprints[0] != fingerprints[1]


def test_a_bidirectional_model_starts_each_direction_from_its_language_model() -> None:
    import numpy as np

    from trainer.language_model import LSTM_WEIGHTS
    from trainer.model import PRESETS, build_model
    from trainer.pretrain import Pretrained
    from trainer.train import start_from_pretrained

    model = build_model(PRESETS["tiny-pretrained"])  # Bidirectional(LSTM(8)) on 16-wide words
    rng = np.random.default_rng(1)
    shapes = {"kernel": (16, 32), "recurrent_kernel": (8, 32), "bias": (32,)}

    def cell() -> dict:
        return {name: rng.normal(size=shapes[name]).astype("float32") for name in LSTM_WEIGHTS}

    def holds(layer, weights: list) -> bool:
        return all(map(np.array_equal, layer.get_weights(), weights))

    (rnn,) = (layer for layer in model.layers if hasattr(layer, "backward_layer"))
    random_backward = [w.copy() for w in rnn.backward_layer.get_weights()]
    vectors = rng.normal(size=(2, 16)).astype("float32")
    forward, backward = cell(), cell()
    start_from_pretrained(model, Pretrained("p1", ("good", "bad"), vectors, forward), ["good"], 1)
    assert holds(rnn.forward_layer, [forward[name] for name in LSTM_WEIGHTS])
    # without a backward language model, the backward LSTM keeps its random start
    assert holds(rnn.backward_layer, random_backward)
    both = Pretrained("p2", ("good", "bad"), vectors, forward, backward)
    start_from_pretrained(model, both, ["good"], 1)
    assert holds(rnn.backward_layer, [backward[name] for name in LSTM_WEIGHTS])
