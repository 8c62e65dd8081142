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
    dropout: float
    recurrent_dropout: float
    epochs: int
    batch_size: int
    validation_split: float


PRESETS = {
    # The seed notebook exactly: Embedding(5000,128) -> LSTM(128) -> Dense(1, sigmoid), last 200
    # tokens, Adam, 5 epochs, batch 64, validation split 0.2.
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
    # A few seconds on a handful of reviews: for tests and smoke checks, not for serving.
    "tiny": Preset(
        num_words=1000,
        max_len=50,
        embed_dim=16,
        units=16,
        dropout=0.0,
        recurrent_dropout=0.0,
        epochs=30,
        batch_size=4,
        validation_split=0.0,
    ),
}


def build_model(preset: Preset) -> Any:
    import keras
    from keras import layers

    model = keras.Sequential(
        [
            keras.Input(shape=(None,), dtype="int32"),
            layers.Embedding(preset.num_words, preset.embed_dim),
            layers.LSTM(
                preset.units, dropout=preset.dropout, recurrent_dropout=preset.recurrent_dropout
            ),
            layers.Dense(1, activation="sigmoid"),
        ]
    )
    model.compile(optimizer="adam", loss="binary_crossentropy", metrics=["accuracy"])
    return model
