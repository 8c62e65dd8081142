"""Model presets and the Keras models they build."""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

DEFAULT_SEED = 1337  # every random choice of a training run, unless the run is given another


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
    patience: int | None = None  # stop after this many epochs without a better val_loss
    # >0 blends the LSTM with a logistic regression on the review's unigrams and bigrams (hashed
    # into this many buckets). The regression reads the review's set of n-grams, L2-normalised
    # and weighted by their log-count ratios (NBSVM, Wang & Manning 2012), and is fitted exactly
    # (scikit-learn). The LSTM is trained alone, with a head of its own; the served head then
    # weighs the two models' logits, fitted on the validation reviews (movies neither model
    # was trained on). (An LSTM trained jointly with the regression, or on its out-of-fold
    # scores, learns next to nothing: the regression leaves it too little loss to learn from.)
    ngram_buckets: int = 0
    ngram_c: float = 100.0  # the regression's inverse L2 penalty, chosen on validation movies
    # Start the embedding, and the LSTM where pretraining learned a language model, from the
    # latest `sentiment pretrain` artifact.
    pretrained: bool = False
    # >0: the learning rate rises over this share of the steps, then decays to a tenth (a
    # pretrained LSTM is fine-tuned gently at first, so its first updates do not undo it).
    warmup: float = 0.0


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
        ngram_buckets=256,
        epochs=30,
        batch_size=4,
        validation_split=0.0,
    ),
}

# An LSTM alone, no n-gram branch: the language models `sentiment pretrain` learned on the
# unlabeled and the training reviews, forward and backward, fine-tuned as a classifier: a masked
# bidirectional LSTM(256) over the last 800 tokens of a 30,000-word vocabulary, averaged over
# time. Early stopping keeps the epoch with the best validation loss, on movies held out of
# training.
PRESETS["lstm"] = Preset(
    num_words=30000,
    max_len=800,
    embed_dim=128,
    units=256,
    mask=True,
    bidirectional=True,
    spatial_dropout=0.1,
    pool=True,
    head_dropout=0.3,
    epochs=3,
    batch_size=64,
    validation_split=0.1,
    patience=1,
    pretrained=True,
    warmup=0.1,
)
# The served model: that LSTM blended with the n-gram regression (see `ngram_buckets`). Chosen
# on validation movies: see BENCHMARKS.md.
PRESETS["best"] = replace(PRESETS["lstm"], ngram_buckets=2**20)
# `tiny`, starting from pretraining as `best` does (`sentiment pretrain --dim 16 --units 8`).
PRESETS["tiny-pretrained"] = replace(PRESETS["tiny"], pretrained=True)


def build_model(preset: Preset) -> Any:
    """The served graph: int32 tokens [batch, time] -> probability of positive [batch, 1]."""
    import keras
    from keras import layers

    from sentiment_inference.layers import NgramIds, SqrtPooling
    from sentiment_inference.scoring import FEATURES, HEAD, NGRAM_BAG, WORDS

    inputs = keras.Input(shape=(None,), dtype="int32")
    x = layers.Embedding(preset.num_words, preset.embed_dim, mask_zero=preset.mask, name=WORDS)(
        inputs
    )
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
    if preset.ngram_buckets:
        bag = layers.Embedding(
            preset.num_words + preset.ngram_buckets,
            1,
            mask_zero=True,
            name=NGRAM_BAG,
        )(NgramIds(preset.num_words, preset.ngram_buckets, unique=True)(inputs))
        x = layers.Concatenate(name=FEATURES)([x, SqrtPooling()(bag)])
    outputs = layers.Dense(1, activation="sigmoid", name=HEAD)(x)
    model = keras.Model(inputs, outputs)
    model.compile(optimizer="adam", loss="binary_crossentropy", metrics=["accuracy"])
    return model


def build_lstm_trainer(model: Any) -> Any:
    """The graph the LSTM of a blended model trains on alone: tokens -> probability, from the
    LSTM's features through a head of its own (its last layer), which starts from the served
    head's LSTM part. Shares every LSTM layer with `model`."""
    import keras

    from sentiment_inference.scoring import FEATURES, HEAD

    kernel, bias = model.get_layer(HEAD).get_weights()
    head = keras.layers.Dense(1, activation="sigmoid")
    trainer = keras.Model(model.input, head(model.get_layer(FEATURES).input[0]))
    head.set_weights([kernel[:-1], bias])
    trainer.compile(optimizer="adam", loss="binary_crossentropy", metrics=["accuracy"])
    return trainer
