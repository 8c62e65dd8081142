"""Batch scoring with a loaded model version. TensorFlow is imported only when a model loads."""

from __future__ import annotations

import atexit
import logging
import math
import threading
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sentiment_core.registry import MODEL_FILE, PREPROCESSOR_FILE, artifact_sha256
from sentiment_core.text import Preprocessor, Reading

log = logging.getLogger(__name__)

# Background compiling (Scorer._forward) stops at exit, after the shape in hand: a thread still
# inside XLA when the interpreter tears it down aborts the process.
_STOPPING = threading.Event()
_COMPILERS: set[threading.Thread] = set()


@atexit.register
def _stop_compiling() -> None:
    _STOPPING.set()
    for thread in list(_COMPILERS):
        thread.join()


INFERENCE_BATCH = 256  # rows per forward pass; larger gains little on CPU and costs memory
# The XLA-compiled path compiles once per input shape, so shapes come in a few sizes: a batch is
# cut into forward passes of ROW_BUCKETS rows (no padding row, whose steps would cost as much as
# a review's), each padded to 16, 32 or a multiple of 64 tokens.
ROW_BUCKETS = (1, 4, 16, 64, INFERENCE_BATCH)
# The cost of a forward pass, in the time a row takes for one token step (7.5 us on this CPU, for
# the `best` model): STEP_ROWS more per step, PASS_COST more per pass (a call).
STEP_ROWS = 2
PASS_COST = 32


def bucket_width(width: int) -> int:
    return 16 if width <= 16 else 32 if width <= 32 else -(-width // 64) * 64


def cheapest_passes(lengths: Sequence[int]) -> list[int]:
    """The sizes of the forward passes, in order, that score rows of these lengths (sorted, the
    shortest first) at the least cost: each pass has a ROW_BUCKETS size and is padded to its
    longest row's bucket width, and costs PASS_COST plus that width times (STEP_ROWS + its rows).
    So a batch of short reviews and one long one pays the long one's width once, not for every
    row."""
    best, size = [0.0] + [math.inf] * len(lengths), [0] * (len(lengths) + 1)
    for end in range(1, len(lengths) + 1):
        width = bucket_width(max(1, lengths[end - 1]))
        for rows in (r for r in ROW_BUCKETS if r <= end):
            cost = best[end - rows] + width * (STEP_ROWS + rows) + PASS_COST
            if cost < best[end]:
                best[end], size[end] = cost, rows
    sizes, end = [], len(lengths)
    while end:
        sizes.append(size[end])
        end -= size[end]
    return sizes[::-1]


def attribution_width(width: int) -> int:
    """Explanations are rarer than batches: fewer, coarser widths, so fewer to compile."""
    return -(-max(width, 1) // 128) * 128


class ArtifactError(RuntimeError):
    """A model artifact is missing or does not match its registered checksum."""


def for_inference(model: Any) -> Any:
    """The same model with recurrent dropout switched off in its config.

    Dropout is inactive at inference anyway, so the weights and outputs are unchanged; but Keras
    runs an LSTM on the GPU's fused (cuDNN) kernel only when recurrent dropout is 0.
    """
    import keras

    config = model.get_config()
    changed = False
    for layer in config["layers"]:
        inner = layer["config"].get("layer", layer)  # Bidirectional wraps its LSTM
        if inner["config"].get("recurrent_dropout"):
            inner["config"]["recurrent_dropout"] = 0.0
            changed = True
    if not changed:
        return model
    clone = keras.Model.from_config(config)
    clone.set_weights(model.get_weights())
    return clone


# Layer names that training, serving and the ablations find a model's parts by.
WORDS = "words"  # the word embedding
NGRAM_BAG = "ngram_bag"  # the n-gram branch's embedding; with width 1, a regression's weights
FEATURES = "features"  # concatenates the LSTM's features and then the n-gram branch's
HEAD = "head"  # the sigmoid over FEATURES
BRANCHES = ("lstm", "ngrams")  # the parts of a two-branch model that can be silenced


def silence(model: Any, branch: str) -> Any:
    """A copy of `model` with one branch's weights in the head set to zero, so its score comes
    from the other branch alone (the ablation `sentiment evaluate --without` reports)."""
    import keras

    if branch not in BRANCHES:
        raise ValueError(f"unknown branch {branch!r}: expected one of {', '.join(BRANCHES)}")
    if NGRAM_BAG not in {layer.name for layer in model.layers}:
        raise ValueError("the model has one branch, an LSTM alone: there is nothing to silence")
    width = model.get_layer(NGRAM_BAG).output_dim
    kernel, bias = model.get_layer(HEAD).get_weights()
    kernel[slice(-width, None) if branch == "ngrams" else slice(None, -width)] = 0.0
    clone = keras.models.clone_model(model)
    clone.set_weights(model.get_weights())
    clone.get_layer(HEAD).set_weights([kernel, bias])
    return clone


@dataclass
class Scorer:
    """One model version, ready to turn review texts into probabilities of `positive`.

    A model that masks its padding is fed length-sorted rows padded only to the longest review
    of each forward pass, so a short review costs a few steps instead of the whole window. A
    model that reads its padding (the seed preset) always gets the full window it was trained on.
    """

    version: str
    preprocessor: Preprocessor
    forward: Any  # compiled function: int32 [batch, time] -> float [batch, 1]
    masked: bool
    bucketed: bool = False  # `forward` is compiled per shape: round shapes up to buckets
    # the compiled path's per-token attributions (sentiment_inference/explain.py), where it has one
    attribute: Any = None
    fallback: Any = None  # the compiled path's `forward` uncompiled, for any shape
    # The shapes `forward` has compiled; those still to compile, in a background thread, the
    # first (in hand) included.
    compiled: set[tuple[int, int]] = field(default_factory=set, init=False)
    _to_compile: list[tuple[int, int]] = field(default_factory=list, init=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, init=False)

    @classmethod
    def load(
        cls,
        version: str,
        artifact_dir: Path,
        expected_sha256: str | None = None,
        without: str | None = None,
    ) -> Scorer:
        """Load a version's artifact; `without` names a branch to silence (see `silence`)."""
        if not (artifact_dir / MODEL_FILE).is_file():
            raise ArtifactError(f"model {version}: no artifact at {artifact_dir}")
        if expected_sha256 and artifact_sha256(artifact_dir) != expected_sha256:
            raise ArtifactError(f"model {version}: artifact checksum does not match the registry")
        import keras

        import sentiment_inference.layers  # noqa: F401  (registers the custom layers the model may use)

        model = for_inference(keras.saving.load_model(artifact_dir / MODEL_FILE, compile=False))
        if without:
            model = silence(model, without)
        return cls.from_model(version, model, Preprocessor.load(artifact_dir / PREPROCESSOR_FILE))

    @classmethod
    def from_model(cls, version: str, model: Any, preprocessor: Preprocessor) -> Scorer:
        import tensorflow as tf

        from sentiment_inference.fastpath import compile_fast

        masked = any(getattr(layer, "mask_zero", False) for layer in model.layers)
        fast = compile_fast(model)
        if fast is not None:
            return cls(
                version, preprocessor, fast.forward, masked, True, fast.attribute, fast.fallback
            )
        forward = tf.function(
            lambda x: model(x, training=False),
            input_signature=[tf.TensorSpec([None, None], tf.int32)],
            autograph=False,  # a plain call: nothing for autograph to convert
        )
        return cls(version, preprocessor, forward, masked)

    def score(self, texts: Sequence[str]) -> list[float]:
        """Probability of a positive review for each text, in input order."""
        return self.score_sequences(self.preprocessor.encode(texts))

    def read_and_score(self, texts: Sequence[str]) -> list[tuple[float, Reading]]:
        """`score`, each with what the model read of the text (`Preprocessor.read`)."""
        readings = self.preprocessor.read(texts)
        scores = self.score_sequences([reading.ids for reading in readings])
        return list(zip(scores, readings, strict=True))

    def score_sequences(self, sequences: Sequence[Sequence[int]]) -> list[float]:
        """`score` for reviews already encoded by the preprocessor."""
        import numpy as np

        order = sorted(range(len(sequences)), key=lambda i: len(sequences[i]))
        if self.bucketed:
            sizes = cheapest_passes([len(sequences[i]) for i in order])
        else:
            sizes = [INFERENCE_BATCH] * -(-len(order) // INFERENCE_BATCH)
        scores = np.empty(len(sequences), dtype=np.float32)
        start = 0
        for size in sizes:
            rows = order[start : start + size]
            start += size
            chunk = [sequences[i] for i in rows]
            width = max(1, len(chunk[-1])) if self.masked else None
            if self.bucketed:
                width = bucket_width(width or 1)  # extra padding is masked out
            batch = self.preprocessor.pad(chunk, width, right=self.masked)
            scores[rows] = self._forward(batch).numpy()[:, 0]
        return scores.tolist()

    def _forward(self, batch: Any) -> Any:
        """`forward` where it has compiled the batch's shape; otherwise the fallback, while a
        background thread compiles the shape for the next batch that has it."""
        if not self.bucketed or batch.shape in self.compiled:
            return self.forward(batch)
        with self._lock:
            if batch.shape not in self._to_compile:
                self._to_compile.append(batch.shape)
                if len(self._to_compile) == 1:
                    thread = threading.Thread(target=self._compile_queued, daemon=True)
                    _COMPILERS.add(thread)
                    thread.start()
        return self.fallback(batch)

    def _compile_queued(self) -> None:
        while True:
            with self._lock:
                if not self._to_compile or _STOPPING.is_set():
                    _COMPILERS.discard(threading.current_thread())
                    return
                shape = self._to_compile[0]
            try:
                self.compile(shape)
            except Exception:  # the fallback goes on scoring the shape
                if not _STOPPING.is_set():  # at exit, Keras may be torn down before this thread
                    log.warning(
                        "could not compile model %s for %s", self.version, shape, exc_info=True
                    )
            with self._lock:
                self._to_compile.pop(0)

    def compile(self, shape: tuple[int, int]) -> None:
        """Compile `forward` for batches of this shape (rows, width)."""
        import numpy as np

        self.forward(np.zeros(shape, dtype=np.int32))
        self.compiled.add(shape)

    def compile_all(self) -> None:
        """Compile every shape a batch can have now, rather than as batches meet them (the
        `best` model's 75 take about a minute on 2 cores): for benchmarks of steady speed."""
        if self.bucketed:
            widths = {bucket_width(n) for n in range(1, self.preprocessor.max_len + 1)}
            for shape in sorted((rows, width) for rows in ROW_BUCKETS for width in widths):
                self.compile(shape)

    def warm_up(self, *, explanations: bool = True) -> None:
        """Get ready to score any batch at once: trace the fallback, which scores each shape
        until `forward` has compiled it (nothing for a Keras-served model). With
        `explanations`, compile the attributions' shapes too, which have no fallback (the
        `best` model's 7 take about 10 s on 2 cores)."""
        import numpy as np

        if not self.bucketed:
            return
        self.fallback(np.zeros((1, 1), dtype=np.int32))
        if explanations:
            lengths = range(1, self.preprocessor.max_len + 1)
            for width in sorted({attribution_width(n) for n in lengths}):
                self.attribute(np.zeros((1, width), dtype=np.int32))
