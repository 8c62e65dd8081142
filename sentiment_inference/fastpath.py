"""A compiled, exact rewrite of the served architecture's forward pass, for speed on the CPU.

For a masked model that averages its (bi)LSTM's outputs over time (the `best` and `tiny`
presets), the LSTM's input projection is folded into the embedding table once (one row lookup
per token instead of a matrix product), the time loop is plain TensorFlow that XLA compiles into
one fused program, and padding is excluded exactly as Keras' masks do. Any other model is
served by Keras itself. Equivalence with the Keras model is tested
(tests/sentiment_inference/test_scoring.py).
One deliberate difference: a review with no known word gets the model's score for an empty
input, where Keras' masked average divides 0 by 0 and answers NaN.
"""

from __future__ import annotations

from typing import Any


def compile_fast(model: Any) -> Any | None:
    """A function int32 [batch, time] (right-padded) -> float [batch, 1], or None when the model
    is not of the shape this rewrite knows."""
    import keras
    import tensorflow as tf

    from sentiment_inference.layers import NgramIds

    kinds = [type(layer) for layer in model.layers]
    known = {
        keras.layers.InputLayer, keras.layers.Embedding, keras.layers.SpatialDropout1D,
        keras.layers.Bidirectional, keras.layers.LSTM, keras.layers.GlobalAveragePooling1D,
        keras.layers.Concatenate, keras.layers.Dropout, keras.layers.Dense, NgramIds,
    }  # fmt: skip
    recurrent = [
        layer
        for layer in model.layers
        if isinstance(layer, keras.layers.Bidirectional | keras.layers.LSTM)
    ]
    embeddings = [layer for layer in model.layers if isinstance(layer, keras.layers.Embedding)]
    if not set(kinds) <= known or len(recurrent) != 1 or not embeddings[0].mask_zero:
        return None
    rnn = recurrent[0]
    cells = (
        [rnn.forward_layer, rnn.backward_layer]
        if isinstance(rnn, keras.layers.Bidirectional)
        else [rnn]
    )
    standard = all(
        c.return_sequences
        and c.cell.use_bias
        and c.activation is keras.activations.tanh
        and c.recurrent_activation is keras.activations.sigmoid
        for c in cells
    )
    if not standard or model.layers[-1].activation is not keras.activations.sigmoid:
        return None
    table = embeddings[0].embeddings.numpy()
    directions = []
    for layer in cells:
        kernel, recurrent_kernel, bias = (w.numpy() for w in layer.cell.weights)
        directions.append((tf.constant(table @ kernel + bias), tf.constant(recurrent_kernel)))
    ngram = next((layer for layer in model.layers if isinstance(layer, NgramIds)), None)
    bag = tf.constant(embeddings[1].embeddings.numpy()) if ngram else None
    dense_kernel, dense_bias = (tf.constant(w.numpy()) for w in model.layers[-1].weights)

    def masked_mean(values, mask):
        mask = tf.cast(mask, values.dtype)[..., None]
        return tf.reduce_sum(values * mask, axis=1) / tf.maximum(tf.reduce_sum(mask, axis=1), 1.0)

    def lstm_mean(projected, recurrent_kernel, tokens):
        units = recurrent_kernel.shape[0]
        steps = tf.transpose(tf.gather(projected, tokens), [1, 0, 2])
        mask = tf.transpose(tokens > 0)
        zeros = tf.zeros([tf.shape(tokens)[0], units])

        def step(carry, inputs):
            h, c, total = carry
            z, keep = inputs
            i, f, g, o = tf.split(z + tf.matmul(h, recurrent_kernel), 4, axis=1)
            c_new = tf.sigmoid(f) * c + tf.sigmoid(i) * tf.tanh(g)
            h_new = tf.sigmoid(o) * tf.tanh(c_new)
            keep = keep[:, None]
            h, c = tf.where(keep, h_new, h), tf.where(keep, c_new, c)
            return h, c, total + tf.where(keep, h, 0.0)

        _, _, total = tf.foldl(step, (steps, mask), initializer=(zeros, zeros, zeros))
        count = tf.reduce_sum(tf.cast(tokens > 0, tf.float32), axis=1, keepdims=True)
        return total / tf.maximum(count, 1.0)

    def forward(tokens):
        lengths = tf.reduce_sum(tf.cast(tokens > 0, tf.int32), axis=1)
        inputs = [tokens, tf.reverse_sequence(tokens, lengths, seq_axis=1, batch_axis=0)]
        features = [lstm_mean(p, u, x) for (p, u), x in zip(directions, inputs, strict=False)]
        if ngram is not None:
            ids = ngram(tokens)
            features.append(masked_mean(tf.gather(bag, ids), ids > 0))
        return tf.sigmoid(tf.matmul(tf.concat(features, axis=1), dense_kernel) + dense_bias)

    return tf.function(forward, autograph=False, jit_compile=True)
