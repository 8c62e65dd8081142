"""The worker pool's Prometheus metrics.

Each scoring process (a worker, or each of its pool processes) records into files under
PROMETHEUS_MULTIPROC_DIR when that is set (as `sentiment up` and `sentiment worker` do), so the
web process's /metrics, or the worker's own metrics port, reports the whole pool on the machine.
"""

from prometheus_client import Counter, Histogram

SCORED = Counter(
    "sentiment_reviews_scored", "Reviews scored, by the model version that scored them",
    ["model_version"],
)  # fmt: skip
FAILED = Counter("sentiment_reviews_failed", "Reviews marked failed, by reason", ["reason"])
BATCH_SIZE = Histogram(
    "sentiment_batch_size", "Reviews scored in one forward pass",
    buckets=(1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024),
)  # fmt: skip
SCORING_SECONDS = Histogram(
    "sentiment_scoring_seconds", "Time to tokenize and score one batch", ["model_version"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
)  # fmt: skip
QUEUE_WAIT_SECONDS = Histogram(
    "sentiment_queue_wait_seconds", "From a review's submission to the start of its scoring",
    buckets=(0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300),
)  # fmt: skip
EXPLAINED = Counter(
    "sentiment_explanations", "Explanations written, by outcome (done or failed)", ["outcome"]
)
EXPLAIN_SECONDS = Histogram(
    "sentiment_explain_seconds", "Time to compute one explanation",
    buckets=(0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
)  # fmt: skip
MODEL_LOADS = Counter("sentiment_model_loads", "Model versions loaded", ["model_version"])
