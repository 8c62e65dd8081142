from pathlib import Path

from core.registry import active_version, artifact_sha256
from core.scoring import Scorer
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


def test_training_records_its_metrics(tiny_artifact: Path, migrated_db) -> None:
    import sqlite3

    database = tiny_artifact.parent / "sentiment.db"
    (metrics,) = sqlite3.connect(database).execute("SELECT metrics FROM model_versions").fetchone()
    assert '"test_accuracy": 1.0' in metrics
    assert '"train_reviews": 12' in metrics
    assert '"parameters":' in metrics
