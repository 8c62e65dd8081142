"""Train a preset on a dataset, evaluate it on the held-out split, write its reports, and
register the version."""

from __future__ import annotations

import dataclasses
import sys
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

from core.db import ModelVersion, make_engine, make_sessionmaker
from core.registry import MODEL_FILE, PREPROCESSOR_FILE, register_version
from core.scoring import Scorer
from core.settings import Settings
from core.text import Preprocessor
from trainer.analysis import analyse
from trainer.batches import BucketedBatches
from trainer.data import Dataset
from trainer.evaluation import classification_metrics
from trainer.model import NGRAM_BAG, PRESETS, build_model, warm_up_linear
from trainer.report import EXAMPLE_REVIEWS, write_json, write_test_report, write_training_curves

DEFAULT_SEED = 1337
REPORT_DIR = "report"


@dataclass(frozen=True)
class TrainRequest:
    preset: str = "seed"
    epochs: int | None = None
    max_samples: int | None = None  # caps the train and the test reviews each, for quick runs
    seed: int = DEFAULT_SEED
    base: Path | None = None  # an artifact to continue training from, with its vocabulary
    learning_rate: float | None = None  # the optimizer's; None keeps the preset's (Adam default)


def train_and_register(settings: Settings, dataset: Dataset, request: TrainRequest) -> ModelVersion:
    """Train, evaluate on `dataset.test`, write the reports, register; returns the new row.

    The fixed IMDb slice that retraining runs judge candidates on is never trained on, so the
    first model and every candidate are compared on reviews none of them has seen.
    """
    staged = staging_dir(settings)
    _, rest = dataset.train.hold_out(settings.gate_imdb_reviews)
    metrics, fingerprint, _ = train_into(staged, Dataset(rest, dataset.test), request)
    engine = make_engine(settings.database_url)
    try:
        with make_sessionmaker(engine)() as session:
            return register_version(
                session,
                staged_dir=staged,
                model_dir=settings.model_dir,
                preset=request.preset,
                metrics=metrics,
                data_fingerprint=fingerprint,
            )
    finally:
        engine.dispose()


def staging_dir(settings: Settings) -> Path:
    """A fresh folder beside the versions, moved into place when the version is registered."""
    staged = settings.model_dir / f".staging-{uuid.uuid4().hex}"
    (staged / REPORT_DIR).mkdir(parents=True)
    return staged


def train_into(folder: Path, dataset: Dataset, request: TrainRequest) -> tuple[dict, str, Scorer]:
    """Write the model, its preprocessor and its reports into `folder`; returns the metrics,
    the training data's fingerprint and a scorer for the trained model."""
    import keras
    import tensorflow as tf

    preset = PRESETS[request.preset]
    if request.epochs:
        preset = dataclasses.replace(preset, epochs=request.epochs)
    keras.utils.set_random_seed(request.seed)
    tf.config.experimental.enable_op_determinism()
    # Shuffled before fitting: Keras takes the validation split from the end, and the official
    # training files are ordered by class.
    train = dataset.train.sample(request.max_samples, request.seed)
    test = dataset.test.sample(request.max_samples, request.seed)
    report = folder / REPORT_DIR

    started = time.monotonic()
    if request.base:
        import core.layers  # noqa: F401  (registers the custom layers the model may use)

        preprocessor = Preprocessor.load(request.base / PREPROCESSOR_FILE)
        model = keras.models.load_model(request.base / MODEL_FILE, compile=False)
    else:
        preprocessor = Preprocessor.fit(
            train.texts, num_words=preset.num_words, max_len=preset.max_len
        )
        model = build_model(preset)
    if request.base or request.learning_rate:
        optimizer = keras.optimizers.Adam(learning_rate=request.learning_rate or 0.001)
        model.compile(optimizer=optimizer, loss="binary_crossentropy", metrics=["accuracy"])
    eda = analyse(train, preprocessor, report)
    callbacks = []
    if preset.patience:
        callbacks.append(
            keras.callbacks.EarlyStopping(
                patience=preset.patience, restore_best_weights=True, monitor="val_loss"
            )
        )
    # The validation part is the end of the shuffled training reviews, as Keras'
    # validation_split takes it.
    sequences = preprocessor.encode(train.texts)
    cut = len(sequences) - int(len(sequences) * preset.validation_split)
    width = None if preset.mask else preset.max_len
    batches = BucketedBatches(
        sequences[:cut], train.labels[:cut], preprocessor, preset.batch_size, request.seed, width
    )
    validation = None
    if cut < len(sequences):
        validation = BucketedBatches(
            sequences[cut:], train.labels[cut:], preprocessor, 256, request.seed, width
        )
    warm_up = None
    if preset.linear_warmup and not request.base:
        warm_up = warm_up_linear(
            model, preset, batches.dataset(), validation and validation.dataset()
        )
    history = model.fit(
        batches.dataset(),
        epochs=preset.epochs,
        validation_data=validation and validation.dataset(),
        shuffle=False,  # the batches reshuffle themselves every epoch
        callbacks=callbacks,
        verbose=1 if sys.stdout.isatty() else 2,
    )
    if warm_up:  # trainable again, so a later fine-tuning run may adjust it
        model.get_layer(NGRAM_BAG).trainable = True
    train_seconds = time.monotonic() - started
    curves = {k: [float(v) for v in values] for k, values in history.history.items()}
    write_training_curves(report, curves)

    scorer = Scorer.from_model("candidate", model, preprocessor)
    started = time.monotonic()
    scores = scorer.score(test.texts)
    test_metrics = classification_metrics(test.labels, scores)
    write_test_report(
        report, test_metrics, test.texts, test.labels, scores, scorer.score(EXAMPLE_REVIEWS)
    )
    metrics = {
        "test": test_metrics,
        "test_accuracy": test_metrics["accuracy"],
        "history": curves,
        "epochs_run": len(curves["loss"]),
        "preset": dataclasses.asdict(preset),
        "train_reviews": len(train.texts),
        "train_seconds": round(train_seconds, 1),
        "test_seconds": round(time.monotonic() - started, 1),
        "parameters": int(model.count_params()),
        "seed": request.seed,
        "share_truncated": eda["share_truncated"],
        "continued_from": str(request.base) if request.base else None,
        "linear_warmup": warm_up,
    }
    write_json(report / "metrics.json", metrics)
    # Saved uncompiled: the optimizer's state would triple the file and serving never uses it.
    served = keras.models.clone_model(model)
    served.set_weights(model.get_weights())
    served.save(folder / MODEL_FILE)
    preprocessor.save(folder / PREPROCESSOR_FILE)
    return metrics, train.fingerprint(), scorer
