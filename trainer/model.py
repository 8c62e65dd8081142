"""Model presets and the Keras models they build."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Preset:
    num_words: int
    max_len: int
    embed_dim: int
    units: int
    epochs: int
    batch_size: int
    validation_split: float
    dropout: float = 0.0
    recurrent_dropout: float = 0.0
    mask: bool = False  # skip padding (Embedding mask_zero) instead of reading it
    spatial_dropout: float = 0.0  # drops whole word vectors while training
    bidirectional: bool = False
    pool: bool = False  # average the LSTM's outputs over time instead of taking its last state
    head_dropout: float = 0.0
    # >0 adds a bag of unigram + hashed bigram embeddings beside the LSTM; with 1 it is a
    # logistic regression on the review's n-grams, learned jointly with the LSTM.
    ngram_dim: int = 0
    ngram_buckets: int = 0
    patience: int | None = None  # stop after this many epochs without a better val_loss
    # >0 first trains the n-gram branch alone, as a logistic regression, for up to this many
    # epochs at `linear_learning_rate` (it converges far slower than the LSTM overfits), then
    # freezes it and trains the LSTM on top, starting from the regression's prediction.
    linear_warmup: int = 0
    linear_learning_rate: float = 0.01


NGRAM_BAG, NGRAM_MEAN, HEAD = "ngram_bag", "ngram_mean", "head"  # layers the warm-up reaches


def warm_up_linear(model: Any, preset: Preset, train: Any, validation: Any) -> dict:
    """Fit the n-gram branch alone as a logistic regression, freeze it, and start the whole
    model's head from the regression (the LSTM's weights in the head at zero). Returns the
    regression's history."""
    import keras
    import numpy as np

    pooled = model.get_layer(NGRAM_MEAN).output
    linear_head = keras.layers.Dense(1, activation="sigmoid")
    linear = keras.Model(model.inputs, linear_head(pooled))
    linear.compile(
        optimizer=keras.optimizers.Adam(preset.linear_learning_rate),
        loss="binary_crossentropy",
        metrics=["accuracy"],
    )
    monitor = "val_loss" if validation is not None else "loss"
    history = linear.fit(
        train,
        validation_data=validation,
        epochs=preset.linear_warmup,
        shuffle=False,
        callbacks=[
            keras.callbacks.EarlyStopping(patience=1, restore_best_weights=True, monitor=monitor)
        ],
        verbose=2,
    )
    model.get_layer(NGRAM_BAG).trainable = False
    kernel, bias = model.get_layer(HEAD).get_weights()
    weight, linear_bias = linear_head.get_weights()
    kernel = np.zeros_like(kernel)
    kernel[-preset.ngram_dim :] = weight
    model.get_layer(HEAD).set_weights([kernel, linear_bias])
    model.compile(optimizer="adam", loss="binary_crossentropy", metrics=["accuracy"])
    return {k: [float(v) for v in values] for k, values in history.history.items()}


PRESETS = {
    # The seed notebook exactly: Embedding(5000,128) -> LSTM(128, dropout 0.2, recurrent dropout
    # 0.2) -> Dense(1, sigmoid), last 200 tokens, Adam, 5 epochs, batch 64, validation split 0.2.
    "seed": Preset(
        num_words=5000,
        max_len=200,
        embed_dim=128,
        units=128,
        dropout=0.2,
        recurrent_dropout=0.2,
        epochs=5,
        batch_size=64,
        validation_split=0.2,
    ),
    # The served model, chosen by validation on the last 10% of the training reviews: a masked
    # bidirectional LSTM over the last 400 tokens of a 20,000-word vocabulary, averaged over
    # time, beside a logistic regression on the review's unigrams and hashed bigrams; the two
    # are learned together. Early stopping keeps the epoch with the best validation loss.
    "best": Preset(
        num_words=20000,
        max_len=400,
        embed_dim=128,
        units=64,
        mask=True,
        spatial_dropout=0.4,
        bidirectional=True,
        pool=True,
        ngram_dim=1,
        ngram_buckets=2**18,
        head_dropout=0.3,
        epochs=3,
        batch_size=64,
        validation_split=0.1,
        patience=1,
        linear_warmup=10,
    ),
    # A first look in about a minute (`sentiment up --quick`, which caps the reviews): masked, so
    # a one-line review is not read as 190 tokens of padding.
    "quick": Preset(
        num_words=10000,
        max_len=200,
        embed_dim=64,
        units=64,
        mask=True,
        head_dropout=0.2,
        epochs=3,
        batch_size=64,
        validation_split=0.1,
        patience=1,
    ),
    # The `best` architecture in miniature, a few seconds on a handful of reviews: for tests and
    # smoke checks, not for serving.
    "tiny": Preset(
        num_words=1000,
        max_len=50,
        embed_dim=16,
        units=8,
        mask=True,
        bidirectional=True,
        pool=True,
        ngram_dim=8,
        ngram_buckets=256,
        epochs=30,
        batch_size=4,
        validation_split=0.0,
    ),
}


def build_model(preset: Preset) -> Any:
    import keras
    from keras import layers

    inputs = keras.Input(shape=(None,), dtype="int32")
    x = layers.Embedding(preset.num_words, preset.embed_dim, mask_zero=preset.mask)(inputs)
    if preset.spatial_dropout:
        x = layers.SpatialDropout1D(preset.spatial_dropout)(x)
    rnn = layers.LSTM(
        preset.units,
        dropout=preset.dropout,
        recurrent_dropout=preset.recurrent_dropout,
        return_sequences=preset.pool,
    )
    x = layers.Bidirectional(rnn)(x) if preset.bidirectional else rnn(x)
    if preset.pool:
        x = layers.GlobalAveragePooling1D()(x)
    if preset.head_dropout:  # on the LSTM's features only: the n-gram regression is kept whole
        x = layers.Dropout(preset.head_dropout)(x)
    if preset.ngram_dim:
        from core.layers import NgramIds

        ids = NgramIds(preset.num_words, preset.ngram_buckets)(inputs)
        bag = layers.Embedding(
            preset.num_words + preset.ngram_buckets,
            preset.ngram_dim,
            mask_zero=True,
            name=NGRAM_BAG,
        )(ids)
        x = layers.Concatenate()([x, layers.GlobalAveragePooling1D(name=NGRAM_MEAN)(bag)])
    outputs = layers.Dense(1, activation="sigmoid", name=HEAD)(x)
    model = keras.Model(inputs, outputs)
    model.compile(optimizer="adam", loss="binary_crossentropy", metrics=["accuracy"])
    return model
