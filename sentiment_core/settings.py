"""One typed settings object, read from the environment, with safe local defaults.

Each setting is declared once, below: its name, type, default, environment variable and the
values it accepts. `Settings.from_env` reads every variable from that declaration, and a bad
value stops the process at start with the variable's name and what it expects. The README's
configuration table is checked against it (tests/sentiment_core/test_settings.py).
"""

from __future__ import annotations

import math
import os
import re
from collections.abc import Callable
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

MAX_REVIEW_CHARS = 20_000  # about ten times the longest IMDb review; longer input is refused
MAX_BATCH_REVIEWS = 1_000  # reviews accepted in one API submission


class SettingsError(ValueError):
    """An environment variable holds a value its setting cannot take."""


Accepts = tuple[Callable[[Any], bool], str]
# What a value read from the environment must be: the test, and how an error message says it.
ANY: Accepts = (lambda v: True, "{a} {noun}")
POSITIVE: Accepts = (lambda v: v > 0, "a positive {noun}")
NOT_NEGATIVE: Accepts = (lambda v: v >= 0, "{a} {noun} of 0 or more")
SHARE: Accepts = (lambda v: 0 < v < 1, "{a} {noun} between 0 and 1")
FRACTION: Accepts = (lambda v: 0 < v <= 1, "{a} {noun} above 0, at most 1")
RETRAIN_MODES: Accepts = (lambda v: v in ("fine-tune", "scratch"), '"fine-tune" or "scratch"')
# flask-limiter's rate limits ("120/minute", "10 per second; 1000 per day"): checked here, where
# a bad one stops every process at start; flask-limiter would skip it and limit nothing.
_RATE = r"\s*\d+\s*(?:/|per)\s*(?:\d+\s*)?(?:second|minute|hour|day|month|year)s?\s*"
RATE_LIMITS: Accepts = (
    lambda v: re.fullmatch(f"{_RATE}(?:[,;|]{_RATE})*", v, re.IGNORECASE) is not None,
    'a rate limit such as "120/minute" or "10 per second; 1000 per day"',
)


def _opens(url: str) -> bool:
    """Whether SQLAlchemy can parse `url` and this install has its driver."""
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError

    try:
        make_url(url).get_dialect().import_dbapi()
    except (ArgumentError, ImportError):
        return False
    return True


DATABASE_URLS: Accepts = (
    lambda v: not v or _opens(v),
    'a database URL whose driver is installed, such as "postgresql+psycopg://user:pw@host/db"',
)
# How a variable's text becomes its setting's type (the field's annotation), and that type's name.
PARSERS: dict[str, tuple[Callable[[str], Any], str]] = {
    "str": (str, "text"),
    "str | None": (lambda raw: raw or None, "text"),
    "Path": (lambda raw: Path(raw).resolve() if raw else Path(), "path"),
    "int": (lambda raw: int(raw.strip()), "integer"),
    "float": (lambda raw: finite(float(raw.strip())), "number"),
}


def finite(value: float) -> float:
    if not math.isfinite(value):
        raise ValueError(f"{value} is not a finite number")
    return value


def setting(env: str, default: Any, accepts: Accepts = ANY) -> Any:
    return field(default=default, metadata={"env": env, "accepts": accepts})


@dataclass(frozen=True)
class Settings:
    """Everything the services need to know about their surroundings.

    `redis_url` is None when the caller should start an embedded Redis (`sentiment up`). Paths
    left empty are placed under `var_dir`.
    """

    var_dir: Path = setting("SENTIMENT_VAR", Path("var"))
    database_url: str = setting("DATABASE_URL", "", DATABASE_URLS)  # empty: SQLite in var_dir
    redis_url: str | None = setting("REDIS_URL", None)
    model_dir: Path = setting("MODEL_DIR", Path())
    imdb_data: str | None = setting("IMDB_DATA", None)  # None: download the official archive
    batch_size: int = setting("BATCH_SIZE", 64, POSITIVE)
    batch_wait_s: float = setting("BATCH_WAIT_S", 0.05, NOT_NEGATIVE)
    # TensorFlow threads per scoring process; 0 lets TensorFlow choose
    worker_threads: int = setting("WORKER_THREADS", 0, NOT_NEGATIVE)
    # where this machine's processes share their Prometheus metrics
    metrics_dir: Path = setting("PROMETHEUS_MULTIPROC_DIR", Path())
    # signs the pages' CSRF tokens; every web process must share it
    secret_key: str = setting("SECRET_KEY", "")
    # allows activating models and starting retraining; empty: nobody can
    admin_token: str = setting("ADMIN_TOKEN", "")
    submit_rate_limit: str = setting("SUBMIT_RATE_LIMIT", "120/minute", RATE_LIMITS)  # per client
    feedback_rate_limit: str = setting("FEEDBACK_RATE_LIMIT", "60/minute", RATE_LIMITS)
    # where rate-limit counters live; empty: the broker's Redis
    ratelimit_storage_url: str = setting("RATELIMIT_STORAGE_URL", "")
    # Reviews that may wait to be scored (queued or scoring); a submission that would take them
    # past it is refused with 503 and Retry-After; 0: no limit. About 15 s of scoring for one
    # worker at the ~700 reviews/s BENCHMARKS.md measured on batched submissions.
    max_backlog: int = setting("MAX_BACKLOG", 10_000, NOT_NEGATIVE)
    # trusted reverse proxies in front of the web, for the client's address
    proxy_hops: int = setting("PROXY_HOPS", 0, NOT_NEGATIVE)
    # how often the scheduler checks whether to retrain
    retrain_every_s: float = setting("RETRAIN_EVERY_S", 3600.0, POSITIVE)
    # new feedback labels needed before a scheduled run
    retrain_min_feedback: int = setting("RETRAIN_MIN_FEEDBACK", 100, POSITIVE)
    # share of labeled reviews kept out of training, for the gate
    feedback_holdout: float = setting("FEEDBACK_HOLDOUT", 0.3, SHARE)
    # most of a run's training data that feedback may make up
    feedback_max_share: float = setting("FEEDBACK_MAX_SHARE", 0.2, SHARE)
    # the lower bound of the candidate's gain on held-out feedback must be above this
    gate_min_gain: float = setting("GATE_MIN_GAIN", 0.0)
    # and the lower bound of its IMDb held-out difference at least minus this
    gate_max_imdb_drop: float = setting("GATE_MAX_IMDB_DROP", 0.005, NOT_NEGATIVE)
    # of the gate's two-sided intervals: each bound alone holds at (1 + this) / 2
    gate_confidence: float = setting("GATE_CONFIDENCE", 0.90, SHARE)
    # a candidate that passes the gate scores this share of batches in shadow first,
    shadow_share: float = setting("SHADOW_SHARE", 0.2, FRACTION)
    # for this long (0: promoted at once)
    shadow_period_s: float = setting("SHADOW_PERIOD_S", 3600.0, NOT_NEGATIVE)
    # the fixed IMDb held-out set: this many training reviews
    gate_imdb_reviews: int = setting("GATE_IMDB_REVIEWS", 2000, NOT_NEGATIVE)
    # how a run trains its candidate: "fine-tune" continues from the active model, its
    # vocabulary grown by the words the feedback needs; "scratch" trains anew (from the latest
    # pretraining where the preset starts from it)
    retrain_mode: str = setting("RETRAIN_MODE", "fine-tune", RETRAIN_MODES)
    # IMDb reviews mixed with the feedback when fine-tuning a model without an n-gram branch
    replay_reviews: int = setting("REPLAY_REVIEWS", 5000, NOT_NEGATIVE)
    # tries at scoring a review before it is failed with the reason
    max_attempts: int = setting("MAX_ATTEMPTS", 3, POSITIVE)
    # how often the reconciler looks for stuck reviews
    reconcile_every_s: float = setting("RECONCILE_EVERY_S", 60.0, POSITIVE)
    # A review queued or scoring this long without moving is sent again; far above a batch's
    # scoring time (seconds), below the broker's visibility timeout (an hour).
    reconcile_after_s: float = setting("RECONCILE_AFTER_S", 300.0, POSITIVE)

    def __post_init__(self) -> None:
        object.__setattr__(self, "var_dir", Path(self.var_dir).resolve())
        if not self.database_url:
            object.__setattr__(self, "database_url", f"sqlite:///{self.var_dir / 'sentiment.db'}")
        if self.model_dir == Path():
            object.__setattr__(self, "model_dir", self.var_dir / "models")
        if self.metrics_dir == Path():
            object.__setattr__(self, "metrics_dir", self.var_dir / "metrics")

    @classmethod
    def from_env(cls, **overrides: object) -> Settings:
        """The settings the environment sets, the declared defaults elsewhere; raises
        SettingsError, naming the variable, for a value its setting cannot take."""
        values: dict[str, Any] = {}
        for item in fields(cls):
            env = item.metadata["env"]
            if env in os.environ and item.name not in overrides:
                values[item.name] = parse(
                    env, os.environ[env], str(item.type), item.metadata["accepts"]
                )
        return cls(**values | overrides)

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


def parse(env: str, raw: str, kind: str, accepts: Accepts) -> Any:
    """`raw`, the text of variable `env`, as a value of type `kind` that `accepts` allows."""
    convert, noun = PARSERS[kind]
    test, expected = accepts
    try:
        value = convert(raw)
        if test(value):
            return value
    except ValueError:
        pass
    article = "an" if noun[0] in "aeiou" else "a"
    raise SettingsError(f'{env} must be {expected.format(a=article, noun=noun)}, got "{raw}"')
