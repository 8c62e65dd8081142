"""Growing a trained model's vocabulary, so that a fine-tuning run learns words the model lacks
without training from scratch."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from sentiment_core.text import Preprocessor
from trainer.pretrain import Pretrained


def grow_vocabulary(
    model: Any,
    preprocessor: Preprocessor,
    words: Sequence[str],
    pretrained: Pretrained | None,
    seed: int,
) -> tuple[Any, Preprocessor]:
    """The model and preprocessor with `words` appended to the vocabulary. Every word already
    known keeps its id and its weights. A new word's vector is its pretrained one where
    pretraining saw it, else a small random one, and its n-gram weight starts at 0. The
    vocabulary's bigram buckets keep their weights (a bigram's bucket depends only on its
    words' ids)."""
    import keras

    from sentiment_inference.layers import NgramIds
    from sentiment_inference.scoring import NGRAM_BAG, WORDS

    grown = Preprocessor(vocab=preprocessor.vocab + tuple(words), max_len=preprocessor.max_len)
    old = model.get_layer(WORDS).input_dim
    size = max(old, grown.num_words)

    def resized(layer: Any) -> Any:
        config = layer.get_config()
        if layer.name == WORDS:
            config["input_dim"] = size
        elif layer.name == NGRAM_BAG:
            config["input_dim"] += size - old
        elif isinstance(layer, NgramIds):
            config["num_words"] = size
        return layer.__class__.from_config(config)

    bigger = keras.models.clone_model(model, clone_function=resized)
    for before, after in zip(model.layers, bigger.layers, strict=True):
        weights = before.get_weights()
        if before.name == WORDS:
            table = np.asarray(weights[0])
            shape = (size, table.shape[1])
            fresh = (
                pretrained.matrix_for(grown.vocab, shape, seed)
                if pretrained is not None
                else np.random.default_rng(seed).uniform(-0.05, 0.05, shape).astype(np.float32)
            )
            new_rows = np.arange(preprocessor.num_words, grown.num_words)
            weights = [np.concatenate([table, fresh[old:]])]
            weights[0][new_rows] = fresh[new_rows]
        elif before.name == NGRAM_BAG:
            table = np.asarray(weights[0])
            gap = np.zeros((size - old, table.shape[1]), table.dtype)
            weights = [np.concatenate([table[:old], gap, table[old:]])]
        after.set_weights(weights)
    return bigger, grown
