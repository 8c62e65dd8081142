"""Train a preset on a dataset, evaluate it on the held-out split, write its reports, and
register the version."""

from __future__ import annotations

import contextlib
import dataclasses
import shutil
import sys
import time
import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from sentiment_core.db import ModelVersion, make_engine, make_sessionmaker
from sentiment_core.registry import MODEL_FILE, PREPROCESSOR_FILE, register_version
from sentiment_core.settings import Settings
from sentiment_core.text import Preprocessor
from sentiment_inference.scoring import HEAD, NGRAM_BAG, WORDS, Scorer
from trainer.analysis import analyse
from trainer.batches import BucketedBatches
from trainer.data import Dataset, Split
from trainer.evaluation import classification_metrics
from trainer.language_model import LSTM_WEIGHTS
from trainer.model import DEFAULT_SEED, PRESETS, Preset, build_lstm_trainer, build_model
from trainer.ngrams import blend, fit_regression, regression_scores, surely_labeled
from trainer.pretrain import Pretrained, PretrainError, load_latest
from trainer.report import EXAMPLE_REVIEWS, write_json, write_test_report, write_training_curves
from trainer.vocabulary import grow_vocabulary

REPORT_DIR = "report"


@dataclass(frozen=True)
class TrainRequest:
    preset: str = "seed"
    epochs: int | None = None
    max_samples: int | None = None  # caps the train and the test reviews each, for quick runs
    seed: int = DEFAULT_SEED
    base: Path | None = None  # an artifact to continue training from, with its vocabulary
    learning_rate: float | None = None  # the optimizer's; None keeps the preset's (Adam default)
    pretrained: Pretrained | None = None  # what pretraining learned, to start the model from
    new_words: tuple[str, ...] = ()  # words to add to the base's vocabulary before fine-tuning
    # Reviews users labeled: learned from beside the training reviews, never validated on.
    feedback: Split = dataclasses.field(default_factory=Split)
    # Fine-tuning a model without an n-gram branch: how many training reviews its LSTM learns
    # again beside the feedback, so that it does not forget them (None: all).
    replay: int | None = None
    # Reviews nobody labeled (the service's recent traffic): the n-gram regression learns again
    # with those its first fit is sure of, labeled as it reads them (self-training).
    unlabeled: tuple[str, ...] = ()


def train_and_register(settings: Settings, dataset: Dataset, request: TrainRequest) -> ModelVersion:
    """Train, evaluate on `dataset.test`, write the reports, register; returns the new row.

    The fixed IMDb slice that retraining runs judge candidates on is never trained on, so the
    first model and every candidate are compared on reviews none of them has seen.
    """
    request = with_pretrained(request, settings)
    _, rest = dataset.train.hold_out(settings.gate_imdb_reviews)
    staged = staging_dir(settings)
    engine = make_engine(settings.database_url)
    try:
        metrics, fingerprint, _ = train_into(staged, Dataset(rest, dataset.test), request)
        with make_sessionmaker(engine)() as session:
            return register_version(
                session,
                staged_dir=staged,
                model_dir=settings.model_dir,
                preset=request.preset,
                metrics=metrics,
                data_fingerprint=fingerprint,
            )
    except BaseException:
        shutil.rmtree(staged, ignore_errors=True)  # a failed run leaves no half-written folder
        raise
    finally:
        engine.dispose()


def with_pretrained(request: TrainRequest, settings: Settings) -> TrainRequest:
    """The request with the latest pretraining artifact when its preset starts from one."""
    if request.base or not PRESETS[request.preset].pretrained:
        return request
    return dataclasses.replace(request, pretrained=load_latest(settings.pretrained_dir))


def start_from_pretrained(
    model: Any, pretrained: Pretrained, vocab: Sequence[str], seed: int
) -> None:
    """Start the embedding from the pretrained vectors and, when pretraining learned language
    models, the forward LSTM from the forward one's and a bidirectional model's backward LSTM
    from the backward one's."""
    import keras

    words = model.get_layer(WORDS)
    shape = (words.input_dim, words.output_dim)
    words.set_weights([pretrained.matrix_for(vocab, shape, seed)])
    rnn = next(
        layer
        for layer in model.layers
        if isinstance(layer, keras.layers.RNN | keras.layers.Bidirectional)
    )
    pairs = [(rnn, pretrained.lstm)]
    if isinstance(rnn, keras.layers.Bidirectional):
        pairs = [(rnn.forward_layer, pretrained.lstm), (rnn.backward_layer, pretrained.backward)]
    for layer, cell in pairs:
        if cell is None:
            continue
        weights = [cell[name] for name in LSTM_WEIGHTS]
        if [w.shape for w in weights] != [w.shape for w in layer.get_weights()]:
            raise PretrainError(
                f"the pretrained LSTM has {weights[1].shape[0]} units, the preset's {layer.units}"
            )
        layer.set_weights(weights)


def set_blended_head(
    preset: Preset,
    model: Any,
    lstm: Any,
    regression: tuple[np.ndarray, float],
    preprocessor: Preprocessor,
    split: Split,
) -> list[float]:
    """Set the served head to the blend of the LSTM (`lstm`, the graph it trained on alone) and
    the regression (its table and bias) fitted on `split`; returns the blend's weights."""
    table, bias = regression
    scores = np.clip(
        Scorer.from_model("lstm", lstm, preprocessor).score(split.texts), 1e-7, 1 - 1e-7
    )
    ngrams = regression_scores(preset, table, preprocessor, preprocessor.encode(split.texts))
    weights = blend(np.log(scores / (1 - scores)), ngrams[:, 0] + bias, split.labels)
    kernel, lstm_bias = lstm.layers[-1].get_weights()
    head = model.get_layer(HEAD)
    head.set_weights(
        [
            np.append(weights[0] * kernel, [[weights[1]]], axis=0),
            weights[0] * lstm_bias + weights[1] * bias + weights[2],
        ]
    )
    return weights.tolist()


def with_known_words(split: Split, preprocessor: Preprocessor) -> tuple[Split, list[list[int]]]:
    """The reviews of `split` with a word in the vocabulary, and their sequences: a review
    without one is nothing to learn from (and a masked LSTM's average over no step is NaN)."""
    sequences = preprocessor.encode(split.texts)
    rows = [i for i, sequence in enumerate(sequences) if sequence]
    return split.subset(rows), [sequences[i] for i in rows]


@contextmanager
def new_words_only(trainer: Any, known: int) -> Iterator[None]:
    """While in the block, `trainer` learns only the vectors of the words past the first
    `known`: every other layer, and every other word's vector, keeps its weights."""
    from keras import ops

    for layer in trainer.layers:
        layer.trainable = layer.name == WORDS
    words = trainer.get_layer(WORDS)
    kept = ops.convert_to_tensor(np.asarray(words.embeddings)[:known])
    # applied after every step: the optimizer moves the whole table, the known rows go back
    words.embeddings.constraint = lambda table: ops.concatenate([kept, table[known:]])
    try:
        yield
    finally:
        for layer in trainer.layers:
            layer.trainable = True
        words.embeddings.constraint = None


def training_parts(train: Split, request: TrainRequest) -> tuple[Split, Split]:
    """The reviews a run on `train` learns from, and the validation movies it holds out."""
    sampled = train.sample(request.max_samples, request.seed)
    return sampled.split_validation(PRESETS[request.preset].validation_split, request.seed)


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
    train = dataset.train.sample(request.max_samples, request.seed)
    feedback = request.feedback
    learned = Split(train.texts + feedback.texts, train.labels + feedback.labels)  # all of it
    test = dataset.test.sample(request.max_samples, request.seed)
    report = folder / REPORT_DIR

    started = time.monotonic()
    if request.base:
        import sentiment_inference.layers  # noqa: F401  (registers the custom layers the model may use)

        preprocessor = Preprocessor.load(request.base / PREPROCESSOR_FILE)
        known_words = preprocessor.num_words
        model = keras.models.load_model(request.base / MODEL_FILE, compile=False)
        if request.new_words:
            model, preprocessor = grow_vocabulary(
                model, preprocessor, request.new_words, request.pretrained, request.seed
            )
    else:
        preprocessor = Preprocessor.fit(
            learned.texts, num_words=preset.num_words, max_len=preset.max_len
        )
        model = build_model(preset)
        if request.pretrained:
            start_from_pretrained(model, request.pretrained, preprocessor.vocab, request.seed)
    preset = dataclasses.replace(preset, num_words=model.get_layer(WORDS).input_dim)  # grown?
    eda = analyse(train, preprocessor, report)
    parts = training_parts(dataset.train, request)
    (fit_part, sequences), (validation, held) = (with_known_words(p, preprocessor) for p in parts)
    feedback, feedback_sequences = with_known_words(feedback, preprocessor)
    held_out = (held, validation.labels) if held else None
    fitted = model
    self_trained = None  # without unlabeled reviews to learn from
    sure: tuple[list[list[int]], list[int]] = ([], [])
    if preset.ngram_buckets:
        corpus = (sequences + feedback_sequences, fit_part.labels + feedback.labels)
        regression = fit_regression(preset, preprocessor, corpus, request.seed)
        if request.unlabeled:
            sure = surely_labeled(preset, preprocessor, regression, request.unlabeled)
            self_trained = len(sure[1])
            corpus = (corpus[0] + sure[0], corpus[1] + sure[1])
            regression = fit_regression(preset, preprocessor, corpus, request.seed)
        model.get_layer(NGRAM_BAG).set_weights([regression[0]])
        fitted = build_lstm_trainer(model)
    # Fine-tuning beside the refitted regression, which adapts to the feedback with less drift
    # on IMDb (BENCHMARKS.md), the LSTM learns only the new words' vectors: from the feedback,
    # and from the self-trained reviews that hold a new word.
    only_new_words = bool(request.base and preset.ngram_buckets)
    if only_new_words:
        learn: tuple[list[list[int]], list[int]] = ([], [])
        if request.new_words:
            taught = [i for i, sequence in enumerate(sure[0]) if max(sequence) >= known_words]
            learn = (
                feedback_sequences + [sure[0][i] for i in taught],
                feedback.labels + [sure[1][i] for i in taught],
            )
        held_out = None
    else:  # the training reviews (when fine-tuning, `replay` of them) and the feedback
        replayed = slice(request.replay if request.base else None)
        learn = (
            sequences[replayed] + feedback_sequences,
            fit_part.labels[replayed] + feedback.labels,
        )
    history: dict[str, list] = {}
    if learn[0]:
        with new_words_only(fitted, known_words) if only_new_words else contextlib.nullcontext():
            history = fit_lstm(fitted, preset, request, preprocessor, learn, held_out)
    blended = None
    if preset.ngram_buckets:  # on the validation movies, or without any the training reviews
        split = validation if validation.texts else fit_part
        blended = set_blended_head(preset, model, fitted, regression, preprocessor, split)
    train_seconds = time.monotonic() - started
    curves = {k: [float(v) for v in values] for k, values in history.items()}
    if curves:  # a fine-tuning run with no new word to learn trains no LSTM
        write_training_curves(report, curves)

    scorer = Scorer.from_model("candidate", model, preprocessor)
    started = time.monotonic()
    scores = scorer.score(test.texts)
    test_metrics = classification_metrics(test.labels, scores)
    validation_metrics = None
    if validation.texts:
        validation_metrics = classification_metrics(
            validation.labels, scorer.score(validation.texts)
        )
    write_test_report(
        report, test_metrics, test.texts, test.labels, scores, scorer.score(EXAMPLE_REVIEWS)
    )
    metrics = {
        "test": test_metrics,
        "test_accuracy": test_metrics["accuracy"],
        # Chosen on: movies held out of training where the data names them (validation_by).
        "validation": validation_metrics,
        "validation_by": validation.texts and ("movie" if validation.groups else "random") or None,
        "pretrained": request.pretrained.version if request.pretrained else None,
        "history": curves,
        # the served head's weights on the LSTM's and the n-gram regression's logits, and bias
        "blend": blended,
        "epochs_run": len(curves.get("loss", [])),
        "preset": dataclasses.asdict(preset),
        "train_reviews": len(train.texts),
        "self_trained_reviews": self_trained,  # unlabeled, labeled as the regression read them
        "train_seconds": round(train_seconds, 1),
        "test_seconds": round(time.monotonic() - started, 1),
        "parameters": int(model.count_params()),
        "seed": request.seed,
        "share_truncated": eda["share_truncated"],
        "continued_from": str(request.base) if request.base else None,
    }
    write_json(report / "metrics.json", metrics)
    # Saved uncompiled: the optimizer's state would triple the file and serving never uses it.
    served = keras.models.clone_model(model)
    served.set_weights(model.get_weights())
    served.save(folder / MODEL_FILE)
    preprocessor.save(folder / PREPROCESSOR_FILE)
    unlabeled = [-1] * len(request.unlabeled)  # what self-training may learn from counts too
    fingerprint = Split(learned.texts + list(request.unlabeled), learned.labels + unlabeled)
    return metrics, fingerprint.fingerprint(), scorer


def fit_lstm(
    fitted: Any,
    preset: Preset,
    request: TrainRequest,
    preprocessor: Preprocessor,
    learn: tuple[list[list[int]], list[int]],
    held_out: tuple[list[list[int]], list[int]] | None,
) -> dict[str, list]:
    """Train `fitted` on the sequences and labels `learn`, stopping early on `held_out` where
    the preset says; returns the history."""
    import keras

    width = None if preset.mask else preset.max_len
    batches = BucketedBatches(*learn, preprocessor, preset.batch_size, request.seed, width)
    if request.base or request.learning_rate or preset.warmup:
        rate = request.learning_rate or 0.001
        if preset.warmup and not request.base:
            steps = preset.epochs * len(batches)
            warmup = int(preset.warmup * steps)
            rate = keras.optimizers.schedules.CosineDecay(
                0.0, steps - warmup, alpha=0.1, warmup_target=rate, warmup_steps=warmup
            )
        optimizer = keras.optimizers.Adam(learning_rate=rate)
        fitted.compile(optimizer=optimizer, loss="binary_crossentropy", metrics=["accuracy"])
    callbacks = []
    if preset.patience and held_out:
        callbacks.append(
            keras.callbacks.EarlyStopping(
                patience=preset.patience, restore_best_weights=True, monitor="val_loss"
            )
        )
    validation_batches = held_out and BucketedBatches(
        *held_out, preprocessor, 256, request.seed, width
    )
    return fitted.fit(
        batches.dataset(),
        epochs=preset.epochs,
        validation_data=validation_batches and validation_batches.dataset(),
        shuffle=False,  # the batches reshuffle themselves every epoch
        callbacks=callbacks,
        verbose=1 if sys.stdout.isatty() else 2,
    ).history
