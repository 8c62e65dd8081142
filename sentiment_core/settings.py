"""One typed settings object, read from the environment, with safe local defaults."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

MAX_REVIEW_CHARS = 20_000  # about ten times the longest IMDb review; longer input is refused
MAX_BATCH_REVIEWS = 1_000  # reviews accepted in one API submission


def _var_dir() -> Path:
    return Path(os.environ.get("SENTIMENT_VAR", "var")).resolve()


@dataclass(frozen=True)
class Settings:
    """Everything the services need to know about their surroundings.

    `redis_url` is None when the caller should start an embedded Redis (`sentiment up`).
    """

    var_dir: Path = field(default_factory=_var_dir)
    database_url: str = ""
    redis_url: str | None = None
    model_dir: Path = Path()
    imdb_data: str | None = None
    batch_size: int = 64
    batch_wait_s: float = 0.05
    worker_threads: int = 0  # TensorFlow threads per scoring process; 0 lets TensorFlow choose
    metrics_dir: Path = Path()  # where this machine's processes share their Prometheus metrics
    secret_key: str = ""  # signs the pages' CSRF tokens; every web process must share it
    admin_token: str = ""  # allows activating models and starting retraining; empty: nobody can
    submit_rate_limit: str = "120/minute"  # per client, API and form together
    feedback_rate_limit: str = "60/minute"  # per client
    ratelimit_storage_url: str = ""  # where rate-limit counters live; empty: the broker's Redis
    proxy_hops: int = 0  # trusted reverse proxies in front of the web, for the client's address
    retrain_every_s: float = 3600.0  # how often the scheduler checks whether to retrain
    retrain_min_feedback: int = 100  # new feedback labels needed before a scheduled run
    feedback_holdout: float = 0.3  # share of labeled reviews kept out of training, for the gate
    feedback_max_share: float = 0.2  # most of a run's training data that feedback may make up
    gate_min_gain: float = 0.0  # the candidate must beat the active model on held-out feedback
    gate_max_imdb_drop: float = 0.005  # and lose at most this much accuracy on IMDb held-out
    gate_imdb_reviews: int = 2000  # the fixed IMDb held-out set: this many training reviews
    replay_reviews: int = 5000  # IMDb reviews mixed with the feedback when fine-tuning
    max_attempts: int = 3  # tries at scoring a review before it is failed with the reason
    reconcile_every_s: float = 60.0  # how often the reconciler looks for stuck reviews
    # A review queued or scoring this long without moving is sent again; far above a batch's
    # scoring time (seconds), below the broker's visibility timeout (an hour).
    reconcile_after_s: float = 300.0

    def __post_init__(self) -> None:
        if not self.database_url:
            object.__setattr__(self, "database_url", f"sqlite:///{self.var_dir / 'sentiment.db'}")
        if self.model_dir == Path():
            object.__setattr__(self, "model_dir", self.var_dir / "models")
        if self.metrics_dir == Path():
            object.__setattr__(self, "metrics_dir", self.var_dir / "metrics")

    @classmethod
    def from_env(cls, **overrides: object) -> Settings:
        env = os.environ
        values: dict[str, object] = {
            "var_dir": _var_dir(),
            "database_url": env.get("DATABASE_URL", ""),
            "redis_url": env.get("REDIS_URL") or None,
            "model_dir": Path(env["MODEL_DIR"]).resolve() if env.get("MODEL_DIR") else Path(),
            "imdb_data": env.get("IMDB_DATA") or None,
            "batch_size": int(env.get("BATCH_SIZE", "64")),
            "batch_wait_s": float(env.get("BATCH_WAIT_S", "0.05")),
            "worker_threads": int(env.get("WORKER_THREADS", "0")),
            "metrics_dir": Path(env.get("PROMETHEUS_MULTIPROC_DIR", "")),
            "secret_key": env.get("SECRET_KEY", ""),
            "admin_token": env.get("ADMIN_TOKEN", ""),
            "submit_rate_limit": env.get("SUBMIT_RATE_LIMIT", "120/minute"),
            "feedback_rate_limit": env.get("FEEDBACK_RATE_LIMIT", "60/minute"),
            "ratelimit_storage_url": env.get("RATELIMIT_STORAGE_URL", ""),
            "proxy_hops": int(env.get("PROXY_HOPS", "0")),
            "retrain_every_s": float(env.get("RETRAIN_EVERY_S", "3600")),
            "retrain_min_feedback": int(env.get("RETRAIN_MIN_FEEDBACK", "100")),
            "feedback_holdout": float(env.get("FEEDBACK_HOLDOUT", "0.3")),
            "feedback_max_share": float(env.get("FEEDBACK_MAX_SHARE", "0.2")),
            "gate_min_gain": float(env.get("GATE_MIN_GAIN", "0")),
            "gate_max_imdb_drop": float(env.get("GATE_MAX_IMDB_DROP", "0.005")),
            "gate_imdb_reviews": int(env.get("GATE_IMDB_REVIEWS", "2000")),
            "replay_reviews": int(env.get("REPLAY_REVIEWS", "5000")),
            "max_attempts": int(env.get("MAX_ATTEMPTS", "3")),
            "reconcile_every_s": float(env.get("RECONCILE_EVERY_S", "60")),
            "reconcile_after_s": float(env.get("RECONCILE_AFTER_S", "300")),
        }
        values.update(overrides)
        return cls(**values)  # type: ignore[arg-type]

    @property
    def broker_url(self) -> str:
        if not self.redis_url:
            raise RuntimeError("REDIS_URL is not set; `sentiment up` starts an embedded Redis")
        return self.redis_url

    @property
    def pretrained_dir(self) -> Path:
        """`sentiment pretrain`'s artifacts, beside the model versions that start from them."""
        return self.model_dir / "pretrained"

    @property
    def data_dir(self) -> Path:
        return self.var_dir / "data"
