"""`sentiment`: run, train and inspect the service. Each command imports only what it runs."""

from __future__ import annotations

import fcntl
import json
import os
import secrets
import subprocess
import sys
from contextlib import contextmanager
from dataclasses import asdict
from pathlib import Path

import click

from sentiment_core.queue import (
    EXPLANATION_QUEUE,
    MAINTENANCE_QUEUE,
    SCORING_QUEUE,
    WORKER_QUEUES,
)
from sentiment_core.settings import Settings, SettingsError
from sentiment_inference.scoring import BRANCHES
from trainer.model import DEFAULT_SEED, PRESETS
from trainer.pretrain import PretrainConfig

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # TensorFlow's start-up chatter, not errors

# Threads per gunicorn worker process. A request waiting for a result (`?wait=`, up to 30 s, or a
# submission's event stream) holds one, idle and with no database connection, so a process serves
# a few dozen waiting clients and its ordinary requests at once; those share SQLAlchemy's pool (5
# connections, 10 more on demand). A thread costs its stack, reserved but mostly untouched.
WEB_THREADS = 32
QUICK_SAMPLES = 8000  # reviews for `up --quick`: a usable first model in about a minute
# How long `up` waits for the first ready scoring worker: the `best` model's warm-up takes about
# 20 s on 2 cores, far longer on a machine busy with something else.
READY_TIMEOUT_S = 600
NO_DATABASE = "no database yet: run `sentiment train` (or `sentiment db upgrade`)"


@contextmanager
def user_errors():
    """Turn the errors a user can fix (bad data files are ValueErrors, unknown versions
    LookupErrors, damaged artifacts RuntimeErrors, an operation's refusals OperationErrors) into
    one line and a non-zero exit."""
    from sentiment_core.errors import OperationError

    try:
        yield
    except (LookupError, ValueError, RuntimeError, OperationError) as exc:
        raise click.ClickException(str(exc)) from exc


@contextmanager
def database_errors():
    """A server that is down or a file that is no database: one line."""
    from sqlalchemy.exc import DatabaseError

    try:
        yield
    except DatabaseError as exc:
        reason = str(exc.orig).splitlines()[0]
        raise click.ClickException(f"cannot open the database: {reason}") from exc


def upgrade(settings: Settings) -> None:
    from sentiment_core.migrate import upgrade_database

    with database_errors():
        upgrade_database(settings)


@click.group()
def cli() -> None:
    """Queue-based movie review sentiment scoring."""
    try:
        Settings.from_env()  # a bad setting stops every command here, in one line
    except SettingsError as exc:
        raise click.ClickException(str(exc)) from exc


@cli.group()
def db() -> None:
    """Database schema."""


@db.command("upgrade")
def db_upgrade() -> None:
    """Apply every migration to DATABASE_URL."""
    upgrade(Settings.from_env())
    click.echo("database is up to date")


@cli.command()
@click.option("--data", "data_path", help="aclImdb folder or .tar.gz, CSV, or JSON lines.")
@click.option("--preset", default="best", show_default=True, type=click.Choice(sorted(PRESETS)))
@click.option("--epochs", type=click.IntRange(min=1), help="Override the preset's epochs.")
@click.option("--max-samples", type=click.IntRange(min=10), help="Cap train and test reviews.")
@click.option("--seed", default=DEFAULT_SEED, show_default=True, help="Seeds every random choice.")
def train(
    data_path: str | None, preset: str, epochs: int | None, max_samples: int | None, seed: int
) -> None:
    """Train a model version, register it, and activate it if none is active."""
    from sentiment_cli.processes import interrupt_on_sigterm
    from trainer.data import load_dataset, resolve_data
    from trainer.train import TrainRequest, train_and_register

    interrupt_on_sigterm()  # a run stopped with SIGTERM cleans up as after Ctrl-C
    settings = Settings.from_env()
    upgrade(settings)
    with user_errors():
        dataset = load_dataset(resolve_data(data_path or settings.imdb_data, settings.data_dir))
        row = train_and_register(
            settings,
            dataset,
            TrainRequest(preset=preset, epochs=epochs, max_samples=max_samples, seed=seed),
        )
    state = "active" if row.active else "registered"
    click.echo(
        f"model {row.version} {state}: test accuracy {row.metrics['test_accuracy']:.4f} "
        f"on {row.metrics['test']['reviews']} reviews; report in {row.artifact_path}/report"
    )


@cli.command()
@click.option(
    "--unlabeled", "unlabeled", help="aclImdb folder or archive holding train/unsup "
    "(default: the unlabeled archive beside the data, under its official name).",
)  # fmt: skip
@click.option("--data", "data_path", help="The labeled dataset (default: IMDB_DATA).")
@click.option(
    "--epochs", default=PretrainConfig.epochs, show_default=True, type=click.IntRange(1),
    help="Passes of the word vectors over the text.",
)  # fmt: skip
@click.option(
    "--lm-epochs", default=PretrainConfig.lm_epochs, show_default=True, type=click.IntRange(0),
    help="Passes of the language model over the text (0: word vectors only).",
)  # fmt: skip
@click.option(
    "--lm-backward-epochs", default=PretrainConfig.lm_backward_epochs, show_default=True,
    type=click.IntRange(0), help="Passes of the backward language model, which reads the text "
    "end to start and starts a bidirectional preset's backward LSTM (0: none).",
)  # fmt: skip
@click.option(
    "--dim", default=PretrainConfig.dim, show_default=True, type=click.IntRange(1),
    help="Vector width: the embedding width of the presets that start from them.",
)  # fmt: skip
@click.option(
    "--units", default=PretrainConfig.lm_units, show_default=True, type=click.IntRange(1),
    help="The language model's LSTM units: those of the presets that start from it.",
)  # fmt: skip
def pretrain(
    unlabeled: str | None,
    data_path: str | None,
    epochs: int,
    lm_epochs: int,
    lm_backward_epochs: int,
    dim: int,
    units: int,
) -> None:
    """Learn word vectors, then language models, from the unlabeled and the training reviews
    (never the test reviews), for the presets that start from them; an interrupted run resumes
    after its last finished epoch."""
    from tqdm import tqdm

    from sentiment_cli.processes import interrupt_on_sigterm
    from trainer.data import DataError, load_dataset, load_unlabeled, resolve_data, unlabeled_path
    from trainer.pretrain import META_FILE
    from trainer.pretrain import pretrain as learn_vectors

    interrupt_on_sigterm()
    settings = Settings.from_env()
    with user_errors():
        data = resolve_data(data_path or settings.imdb_data, settings.data_dir)
        source = Path(unlabeled) if unlabeled else unlabeled_path(data)
        if source is None:
            raise DataError(f"no unlabeled reviews beside {data}: give --unlabeled")
        dataset = load_dataset(data)
        texts = dataset.train.texts + load_unlabeled(source, exclude=dataset.test.texts)
        with tqdm(unit=" words", unit_scale=True, file=sys.stderr, desc="pretraining") as bar:

            def show(done: int, total: int) -> None:
                bar.total = total
                bar.update(done - bar.n)

            folder = learn_vectors(
                texts,
                settings.pretrained_dir,
                PretrainConfig(
                    dim=dim,
                    epochs=epochs,
                    lm_epochs=lm_epochs,
                    lm_backward_epochs=lm_backward_epochs,
                    lm_units=units,
                ),
                show,
            )
    meta = json.loads((folder / META_FILE).read_text(encoding="utf-8"))
    click.echo(f"pretrained {folder.name}: {meta['words']} words from {meta['texts']} reviews")


def migrated_engine(url: str):
    """An engine on `url` once the migrations have built its schema; else one line saying how
    to build it, leaving no empty SQLite file behind (connecting would create one)."""
    from sqlalchemy import inspect

    from sentiment_core.db import make_engine

    engine = make_engine(url)
    no_file = engine.dialect.name == "sqlite" and not Path(engine.url.database or "").is_file()
    with database_errors():
        built = not no_file and inspect(engine).has_table("alembic_version")
    if not built:
        engine.dispose()
        raise click.ClickException(NO_DATABASE)
    return engine


def make_sessions():
    """A sessionmaker on DATABASE_URL."""
    from sentiment_core.db import make_sessionmaker

    return make_sessionmaker(migrated_engine(Settings.from_env().database_url))


def sessions():
    return make_sessions()()


def load_scorer(version: str | None, without: str | None = None):
    """The scorer for `version`, or for the active version when None, with the branch
    `without` names silenced."""
    from sentiment_core.registry import active_version, get_version
    from sentiment_inference.scoring import Scorer

    with sessions() as session:
        row = get_version(session, version) if version else active_version(session)
    if row is None:
        missing = f"no model version {version!r}" if version else "no model is active"
        raise click.ClickException(f"{missing}; train one with `sentiment train`")
    with user_errors():
        return Scorer.load(row.version, Path(row.artifact_path), row.artifact_sha256, without)


@cli.command()
@click.argument("texts", nargs=-1)
def predict(texts: tuple[str, ...]) -> None:
    """Score reviews in-process with the active model (one per argument, or per stdin line)."""
    from sentiment_core.db import Sentiment
    from sentiment_core.inputs import clean_text

    reviews = list(texts) or [line.rstrip("\n") for line in sys.stdin or () if line.strip()]
    if not reviews:
        raise click.ClickException("give reviews as arguments or one per line on stdin")
    with user_errors():  # the API's rules: no empty text, no character that is not text
        reviews = [clean_text(text, f"review {i}") for i, text in enumerate(reviews, start=1)]

    scorer = load_scorer(None)
    for text, score in zip(reviews, scorer.score(reviews), strict=True):
        line = {"text": text, "sentiment": Sentiment.of(score).value, "score": round(score, 4)}
        click.echo(json.dumps(line | {"model_version": scorer.version}))


@cli.command()
@click.argument("text")
def explain(text: str) -> None:
    """Print why the active model scores a review as it does: one JSON object with each word's
    weight (log-odds; positive pushes toward positive) and the score sentence by sentence."""
    from sentiment_core.db import Sentiment
    from sentiment_core.inputs import clean_text
    from sentiment_inference.explain import explain as explain_text

    with user_errors():
        text = clean_text(text, "the review")

    scorer = load_scorer(None)
    result = explain_text(scorer, text)
    shown = {"model_version": scorer.version, "sentiment": Sentiment.of(result.score).value}
    click.echo(json.dumps(shown | asdict(result)))


@cli.command()
@click.option("--data", "data_path", required=True, help="A labeled file in any training shape.")
@click.option("--model", "version", help="Model version (default: the active one).")
@click.option(
    "--without", type=click.Choice(BRANCHES),
    help="Silence this branch of a two-branch model: what is left is the other's share.",
)  # fmt: skip
def evaluate(data_path: str, version: str | None, without: str | None) -> None:
    """Print one JSON object of metrics for a model on labeled reviews (the test split of an
    aclImdb folder or archive; every review of a CSV or JSON-lines file)."""
    from trainer.data import load_labeled
    from trainer.evaluation import classification_metrics

    with user_errors():
        split = load_labeled(Path(data_path))
    scorer = load_scorer(version, without)
    metrics = classification_metrics(split.labels, scorer.score(split.texts))
    shown = {"model_version": scorer.version, "data": data_path, "without": without}
    click.echo(json.dumps(shown | metrics))


@cli.group()
def models() -> None:
    """The model registry."""


@models.command("list")
def models_list() -> None:
    """Every version, newest first; * marks the active one."""
    from sentiment_core.registry import list_versions

    with sessions() as session:
        rows = list_versions(session)
    for row in rows:
        accuracy = row.metrics.get("test_accuracy")
        shown = f"{accuracy:.4f}" if isinstance(accuracy, float) else "-"
        created = row.created_at.strftime("%Y-%m-%d %H:%M")
        mark = "*" if row.active else " "
        click.echo(f"{mark} {row.version:<6} {row.preset:<8} test accuracy {shown}  {created}")


@models.command("activate")
@click.argument("version")
def models_activate(version: str) -> None:
    """Make VERSION the one the workers serve (from their next batch)."""
    from sentiment_core.operations import activate_model

    with user_errors():
        row = activate_model(sessions=make_sessions(), version=version)
    click.echo(f"{row.version} is active")


@models.command("rollback")
def models_rollback() -> None:
    """Re-activate the version that was active before the current one."""
    from sentiment_core.operations import rollback_model

    with user_errors():
        row = rollback_model(sessions=make_sessions())
    click.echo(f"rolled back: {row.version} is active")


@cli.command()
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=8000, show_default=True, type=click.IntRange(1, 65535))
@click.option(
    "--workers", type=click.IntRange(min=1), default=2, show_default=True,
    help="gunicorn worker processes.",
)  # fmt: skip
@click.option(
    "--threads",
    type=click.IntRange(min=1),
    default=WEB_THREADS,
    show_default=True,
    help="Threads per worker process: the requests each one serves at once.",
)
@click.option("--debug", is_flag=True, help="Flask's development server with reloading.")
def web(host: str, port: int, workers: int, threads: int, debug: bool) -> None:
    """Serve the web pages and the JSON API (gunicorn, threaded workers)."""
    settings = service_settings()
    if not (settings.secret_key or debug):
        raise click.ClickException("SECRET_KEY is not set: every web process signs forms with it")
    if debug:
        from web.app import create_app

        create_app().run(host=host, port=port, debug=True)
        return
    os.execv(
        sys.executable,
        [
            sys.executable, "-m", "gunicorn",
            "--bind", f"{host}:{port}",
            "--workers", str(workers),
            "--worker-class", "gthread",
            "--threads", str(threads),
            "--access-logfile", "-",
            "web.app:create_app()",
        ],
    )  # fmt: skip


def service_settings() -> Settings:
    """Settings for a long-running service, which needs a broker to talk to."""
    settings = Settings.from_env()
    if settings.redis_url is None:
        raise click.ClickException("REDIS_URL is not set (`sentiment up` starts a Redis itself)")
    share_metrics(settings)
    return settings


# `sentiment up`'s explainer: a pool of its own for explanations, at a lower CPU priority, so
# that explaining never takes the cores scoring needs.
EXPLAINER = ("worker", "--queues", EXPLANATION_QUEUE, "--nice", "19")


def share_metrics(settings: Settings) -> None:
    """Point prometheus_client at the machine's shared metrics folder; must run before it is
    imported."""
    settings.metrics_dir.mkdir(parents=True, exist_ok=True)
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = str(settings.metrics_dir)


@cli.command()
@click.option(
    "--concurrency", type=click.IntRange(min=1), default=1, show_default=True,
    help="Scoring processes: 1 scores in the worker's own process, more fork a pool.",
)  # fmt: skip
@click.option(
    "--queues", default=",".join(WORKER_QUEUES), show_default=True,
    help="The queues to take work from, comma-separated (a pool of its own for explanations).",
)  # fmt: skip
@click.option(
    "--nice", type=click.IntRange(0, 19), default=0, show_default=True,
    help="Lower the pool's CPU priority by this much (an explainer pool yields to scoring).",
)  # fmt: skip
@click.option("--metrics-port", type=int, help="Also serve the pool's metrics on this port.")
@click.option("--loglevel", default="INFO", show_default=True)
def worker(
    concurrency: int, queues: str, nice: int, metrics_port: int | None, loglevel: str
) -> None:
    """Score queued reviews in batches, and explain scores, with the active model."""
    names = [name.strip() for name in queues.split(",") if name.strip()]
    if not names or not set(names) <= set(WORKER_QUEUES):
        choices = ", ".join(WORKER_QUEUES)
        raise click.BadParameter(f"name one or more of {choices}", param_hint="--queues")
    settings = service_settings()
    os.nice(nice)  # before a pool forks and TensorFlow starts its threads: they all inherit it
    from worker.app import run_worker

    run_worker(
        settings,
        concurrency=concurrency,
        queues=names,
        metrics_port=metrics_port,
        loglevel=loglevel,
    )


@cli.command()
@click.option("--loglevel", default="INFO", show_default=True)
def trainer(loglevel: str) -> None:
    """Run retraining jobs from the `training` queue, one at a time."""
    settings = service_settings()
    from trainer.service import run_trainer

    run_trainer(settings, loglevel=loglevel)


@cli.command()
@click.option("--loglevel", default="INFO", show_default=True)
def beat(loglevel: str) -> None:
    """Send the scheduled jobs (the retraining check every RETRAIN_EVERY_S seconds)."""
    settings = service_settings()
    from sentiment_core.queue import beat_schedule, create_celery

    app = create_celery(settings)
    app.conf.beat_schedule = beat_schedule(settings)
    settings.var_dir.mkdir(parents=True, exist_ok=True)
    schedule = settings.var_dir / "beat-schedule"
    app.start(["beat", f"--schedule={schedule}", f"--loglevel={loglevel}"])


@cli.command()
@click.option("--reason", default="started from the command line", show_default=True)
def retrain(reason: str) -> None:
    """Run one retraining run now, in this process, and print its record as JSON."""
    from sentiment_cli.processes import interrupt_on_sigterm
    from sentiment_core.db import RunTrigger
    from sentiment_core.schemas import RunPublic
    from trainer.retrain import retrain as run_retraining

    interrupt_on_sigterm()  # the run is recorded failed, as after Ctrl-C, and blocks no other
    settings = Settings.from_env()
    migrated_engine(settings.database_url).dispose()  # no database yet: one line, not a traceback
    with user_errors():  # a run in progress, no active model, unreadable data
        run = run_retraining(settings, trigger=RunTrigger.admin, reason=reason)
    if run is None:
        raise click.ClickException("the run did not start")
    click.echo(json.dumps(RunPublic().dump(run)))
    if run.error:
        raise click.ClickException(run.error)


@cli.command()
@click.option("--quick", is_flag=True, help="Train a small first model (about a minute).")
@click.option(
    "--preset", default="best", show_default=True, type=click.Choice(sorted(PRESETS)),
    help="What to train when no model is registered (without --quick).",
)  # fmt: skip
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=8000, show_default=True, type=click.IntRange(1, 65535))
@click.option(
    "--workers", type=click.IntRange(min=1), default=1, show_default=True,
    help="Scoring worker processes.",
)  # fmt: skip
def up(quick: bool, preset: str, host: str, port: int, workers: int) -> None:
    """Migrate, start an embedded Redis if REDIS_URL is unset, train a first model if none is
    registered, then run workers, trainer, beat and web together until Ctrl-C; the service is
    up once /readyz says a scoring worker holds the model, warm."""
    from sentiment_cli.processes import (
        UP_CHILD,
        check_port,
        interrupt_on_sigterm,
        start_redis,
        stop,
        supervise,
        wait_until_ready,
    )
    from sentiment_core.db import make_engine, make_sessionmaker
    from sentiment_core.registry import list_versions
    from trainer.pretrain import latest_artifact

    settings = Settings.from_env()
    settings.var_dir.mkdir(parents=True, exist_ok=True)
    lock = (settings.var_dir / "up.lock").open("w")  # held until this process ends
    try:
        fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        raise click.ClickException(f"a `sentiment up` already runs on {settings.var_dir}") from None
    check_port(host, port)
    share_metrics(settings)
    for stale in settings.metrics_dir.glob("*.db"):  # counters start again with the pool
        stale.unlink()
    env = dict(os.environ, SENTIMENT_VAR=str(settings.var_dir))
    env.setdefault("SECRET_KEY", secrets.token_hex(32))
    env.setdefault("ADMIN_TOKEN", secrets.token_urlsafe(16))
    # Worker processes share the cores instead of each starting a thread per core.
    env.setdefault("WORKER_THREADS", str(max(1, (os.cpu_count() or 1) // workers)))
    children: list[subprocess.Popen] = []
    interrupt_on_sigterm()
    try:
        if settings.redis_url is None:
            with user_errors():  # a damaged append-only file, say: Redis's own last line
                redis_process, env["REDIS_URL"] = start_redis(
                    settings.var_dir / "redis", **UP_CHILD
                )
            children.append(redis_process)
            click.echo(f"embedded Redis at {env['REDIS_URL']}")
        upgrade(settings)
        with make_sessionmaker(make_engine(settings.database_url))() as session:
            has_model = bool(list_versions(session))
        if not has_model:
            click.echo("no model registered yet: training one first")
            how = ["--preset", "quick", "--max-samples", str(QUICK_SAMPLES)] if quick else []
            if (
                not quick
                and PRESETS[preset].pretrained
                and not latest_artifact(settings.pretrained_dir)
            ):
                click.echo(
                    f"the {preset} preset starts from a pretrained language model and there is "
                    "none yet, so the first model is the `quick` preset; for the better one run "
                    f"`sentiment pretrain`, then `sentiment train --preset {preset}`"
                )
                how = ["--preset", "quick"]
            command = [
                sys.executable,
                "-m",
                "sentiment_cli.main",
                "train",
                *(how or ["--preset", preset]),
            ]
            children.append(training := subprocess.Popen(command, env=env, **UP_CHILD))
            if training.wait() != 0:  # interrupted, it is stopped as the others, and cleans up
                raise click.ClickException("training the first model failed")
            children.remove(training)
        me = [sys.executable, "-m", "sentiment_cli.main"]
        scoring = [*me, "worker", "--queues", f"{SCORING_QUEUE},{MAINTENANCE_QUEUE}"]
        services = [scoring] * workers + [[*me, *EXPLAINER], [*me, "trainer"], [*me, "beat"]]
        services.append([*me, "web", "--host", host, "--port", str(port)])
        children += [subprocess.Popen(command, env=env, **UP_CHILD) for command in services]
        click.echo(
            "waiting until a scoring worker has loaded the model and warmed it up "
            f"(up to {READY_TIMEOUT_S // 60} minutes)"
        )
        with user_errors():  # a service that stopped, or the time is up
            wait_until_ready(f"http://{host}:{port}/readyz", children, READY_TIMEOUT_S)
    except BaseException:
        stop(children)
        raise
    click.echo(f"sentiment service is up: http://{host}:{port}/  (Ctrl-C stops it)")
    if "ADMIN_TOKEN" not in os.environ:
        click.echo(
            f"admin token for this run (set ADMIN_TOKEN to choose one): {env['ADMIN_TOKEN']}"
        )
    sys.exit(supervise(children))


if __name__ == "__main__":
    cli()
