"""A compiled, exact rewrite of the served architecture's forward pass, for speed on the CPU.

For a masked model that averages its (bi)LSTM's outputs over time (the `best` and `tiny`
presets), the LSTM's input projection is folded into the embedding table once (one row lookup
per token instead of a matrix product), the time loop is plain TensorFlow that XLA compiles into
one fused program, and padding is excluded exactly as Keras' masks do. Any other model is
served by Keras itself. Equivalence with the Keras model is tested
(tests/sentiment_inference/test_scoring.py).
One deliberate difference: a review with no known word gets the model's score for an empty
input, where Keras' masked average divides 0 by 0 and answers NaN.

The same rewrite gives each token's part in the logit, for explanations
(sentiment_inference/explain.py).
"""

from __future__ import annotations

from typing import Any, NamedTuple

ATTRIBUTION_STEPS = 8  # integrated gradients' steps from the zero vectors to the review's


class Compiled(NamedTuple):
    # int32 tokens [batch, time], right-padded -> probability of positive [batch, 1]; XLA
    # compiles it for each shape it meets (about a second each on 2 cores)
    forward: Any
    attribute: Any  # int32 tokens [1, time], right-padded -> each token's part of the logit [time]
    # `forward` as a plain TensorFlow graph, traced once for every shape: 1.2-3x slower, but
    # it scores a shape at once while XLA has not compiled it yet
    fallback: Any


def compile_fast(model: Any) -> Compiled | None:
    """The model's compiled functions, or None when the model is not of the shape this rewrite
    knows."""
    import keras
    import tensorflow as tf

    from sentiment_inference.layers import NgramIds, SqrtPooling

    kinds = [type(layer) for layer in model.layers]
    known = {
        keras.layers.InputLayer, keras.layers.Embedding, keras.layers.SpatialDropout1D,
        keras.layers.Bidirectional, keras.layers.LSTM, keras.layers.GlobalAveragePooling1D,
        keras.layers.Concatenate, keras.layers.Dropout, keras.layers.Dense, NgramIds, SqrtPooling,
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
    directions = []  # per direction: its input projection folded into the table, and unfolded
    for layer in cells:
        kernel, recurrent_kernel, bias = (w.numpy() for w in layer.cell.weights)
        directions.append(
            (
                tf.constant(table @ kernel + bias),
                tf.constant(recurrent_kernel),
                tf.constant(kernel),
                tf.constant(bias),
            )
        )
    ngram = next((layer for layer in model.layers if isinstance(layer, NgramIds)), None)
    # the bag's divisor: its size, or (a binary bag, L2-normalised) the root of its size
    divisor = tf.sqrt if SqrtPooling in kinds else tf.identity
    dense_kernel, dense_bias = (tf.constant(w.numpy()) for w in model.layers[-1].weights)
    recurrent_width = sum(d[1].shape[0] for d in directions)
    if ngram is not None:  # each n-gram's term in the logit: its bag row times its head weights
        bag_logit = tf.constant(embeddings[1].embeddings.numpy() @ dense_kernel[recurrent_width:])
    words = tf.constant(table)

    def lstm_mean(inputs, recurrent_kernel, mask):
        """Mean over time of an LSTM's outputs; `inputs` are its projected inputs [b, t, 4u]."""
        units = recurrent_kernel.shape[0]
        zeros = tf.zeros([tf.shape(inputs)[0], units])

        def step(carry, inputs):
            h, c, total = carry
            z, keep = inputs
            i, f, g, o = tf.split(z + tf.matmul(h, recurrent_kernel), 4, axis=1)
            c_new = tf.sigmoid(f) * c + tf.sigmoid(i) * tf.tanh(g)
            h_new = tf.sigmoid(o) * tf.tanh(c_new)
            keep = keep[:, None]
            h, c = tf.where(keep, h_new, h), tf.where(keep, c_new, c)
            return h, c, total + tf.where(keep, h, 0.0)

        steps = (tf.transpose(inputs, [1, 0, 2]), tf.transpose(mask))
        _, _, total = tf.foldl(step, steps, initializer=(zeros, zeros, zeros))
        count = tf.reduce_sum(tf.cast(mask, tf.float32), axis=1, keepdims=True)
        return total / tf.maximum(count, 1.0)

    def recurrent_logit(project, tokens):
        """The LSTM's part of the logit; `project(direction, reversed)` gives its inputs."""
        mask = tokens > 0
        features = [lstm_mean(project(d, i == 1), d[1], mask) for i, d in enumerate(directions)]
        return tf.matmul(tf.concat(features, axis=1), dense_kernel[:recurrent_width])[:, 0]

    def ngram_terms(tokens):
        """Each n-gram's term in the logit [b, 2t - 1] (zero for padding); they sum to the
        n-gram branch's part of it."""
        ids = ngram(tokens)
        present = tf.cast(ids > 0, tf.float32)
        count = tf.maximum(tf.reduce_sum(present, axis=1, keepdims=True), 1.0)
        return tf.gather(bag_logit, ids)[..., 0] * present / divisor(count)

    def forward(tokens):
        lengths = tf.reduce_sum(tf.cast(tokens > 0, tf.int32), axis=1)

        def project(direction, reverse):
            ids = tokens
            if reverse:
                ids = tf.reverse_sequence(tokens, lengths, seq_axis=1, batch_axis=0)
            return tf.gather(direction[0], ids)

        logit = recurrent_logit(project, tokens) + dense_bias[0]
        if ngram is not None:
            logit += tf.reduce_sum(ngram_terms(tokens), axis=1)
        return tf.sigmoid(logit)[:, None]

    def attribute(tokens):
        """Each token's signed contribution to the logit, for one review [1, t] -> [t]:
        integrated gradients on the word vectors for the LSTM's part (from all-zero vectors,
        ATTRIBUTION_STEPS midpoints), and the exact terms of the n-gram branch, each bigram's
        split evenly between its two words."""
        length = tf.reduce_sum(tf.cast(tokens > 0, tf.int32), axis=1)
        alphas = (tf.range(ATTRIBUTION_STEPS, dtype=tf.float32) + 0.5) / ATTRIBUTION_STEPS
        vectors = tf.gather(words, tokens[0])
        repeated = tf.repeat(tokens, ATTRIBUTION_STEPS, axis=0)
        with tf.GradientTape() as tape:
            scaled = alphas[:, None, None] * vectors[None]
            tape.watch(scaled)

            def project(direction, reverse):
                x = scaled
                if reverse:
                    x = tf.reverse_sequence(
                        x, tf.repeat(length, ATTRIBUTION_STEPS), seq_axis=1, batch_axis=0
                    )
                return tf.einsum("btd,dk->btk", x, direction[2]) + direction[3]

            logit = tf.reduce_sum(recurrent_logit(project, repeated))
        gradients = tape.gradient(logit, scaled)
        weights = tf.reduce_sum(tf.reduce_mean(gradients, axis=0) * vectors, axis=1)
        if ngram is not None:
            terms = ngram_terms(tokens)[0]
            steps = tf.shape(tokens)[1]
            bigrams = tf.pad(terms[steps:], [[1, 1]])
            weights += terms[:steps] + (bigrams[:-1] + bigrams[1:]) / 2
        return weights

    return Compiled(
        tf.function(forward, autograph=False, jit_compile=True),
        tf.function(attribute, autograph=False, jit_compile=True),
        tf.function(
            forward, autograph=False, input_signature=[tf.TensorSpec([None, None], tf.int32)]
        ),
    )
