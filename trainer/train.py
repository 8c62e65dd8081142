"""Train a preset on a dataset, evaluate it on the held-out split, and register the version."""

from __future__ import annotations

import dataclasses
import sys
import time
import uuid
from dataclasses import dataclass

from core.db import ModelVersion, make_engine, make_sessionmaker
from core.registry import MODEL_FILE, PREPROCESSOR_FILE, register_version
from core.settings import Settings
from core.text import Preprocessor
from trainer.data import Dataset
from trainer.model import PRESETS, build_model

DEFAULT_SEED = 1337


@dataclass(frozen=True)
class TrainRequest:
    preset: str = "seed"
    epochs: int | None = None
    max_samples: int | None = None  # caps the train and the test reviews each, for quick runs
    seed: int = DEFAULT_SEED


def train_and_register(settings: Settings, dataset: Dataset, request: TrainRequest) -> ModelVersion:
    import keras
    import numpy as np

    preset = PRESETS[request.preset]
    if request.epochs:
        preset = dataclasses.replace(preset, epochs=request.epochs)
    keras.utils.set_random_seed(request.seed)
    # Shuffled before fitting: Keras takes the validation split from the end, and the official
    # training files are ordered by class.
    train = dataset.train.sample(request.max_samples, request.seed)
    test = dataset.test.sample(request.max_samples, request.seed)

    started = time.monotonic()
    preprocessor = Preprocessor.fit(train.texts, num_words=preset.num_words, max_len=preset.max_len)
    model = build_model(preset)
    history = model.fit(
        preprocessor.pad(preprocessor.encode(train.texts)),
        np.asarray(train.labels, dtype=np.float32),
        epochs=preset.epochs,
        batch_size=preset.batch_size,
        validation_split=preset.validation_split,
        verbose=1 if sys.stdout.isatty() else 2,
    )
    train_seconds = time.monotonic() - started
    test_loss, test_accuracy = model.evaluate(
        preprocessor.pad(preprocessor.encode(test.texts)),
        np.asarray(test.labels, dtype=np.float32),
        batch_size=256,
        verbose=0,
    )
    metrics = {
        "test_accuracy": float(test_accuracy),
        "test_loss": float(test_loss),
        "history": {k: [float(v) for v in vs] for k, vs in history.history.items()},
        "train_reviews": len(train.texts),
        "test_reviews": len(test.texts),
        "epochs": preset.epochs,
        "train_seconds": round(train_seconds, 1),
        "parameters": int(model.count_params()),
        "seed": request.seed,
    }

    settings.model_dir.mkdir(parents=True, exist_ok=True)
    staged = settings.model_dir / f".staging-{uuid.uuid4().hex}"
    staged.mkdir()
    model.save(staged / MODEL_FILE)
    preprocessor.save(staged / PREPROCESSOR_FILE)
    engine = make_engine(settings.database_url)
    try:
        with make_sessionmaker(engine)() as session:
            return register_version(
                session,
                staged_dir=staged,
                model_dir=settings.model_dir,
                preset=request.preset,
                metrics=metrics,
                data_fingerprint=train.fingerprint(),
            )
    finally:
        engine.dispose()
