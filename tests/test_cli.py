import fcntl
import json
import os
import shutil
import socket
import subprocess
import sys
import time
from dataclasses import replace
from pathlib import Path

from sqlalchemy import inspect

from sentiment_cli.processes import free_port
from sentiment_core.db import make_engine
from sentiment_core.settings import Settings
from tests.databases import empty_database
from tests.factories import NEGATIVE, POSITIVE, write_imdb_folder, write_jsonl

ROOT = Path(__file__).resolve().parent.parent


def sentiment(settings, *args: str, stdin: str | None = None) -> subprocess.CompletedProcess:
    env = dict(
        os.environ,
        SENTIMENT_VAR=str(settings.var_dir),
        DATABASE_URL=settings.database_url,
        MODEL_DIR=str(settings.model_dir),
    )
    return subprocess.run(
        [sys.executable, "-m", "sentiment_cli.main", *args],
        cwd=ROOT,
        env=env,
        input=stdin,
        capture_output=True,
        text=True,
        timeout=300,
    )


def test_predict_prints_one_json_line_per_review(settings, tiny_model) -> None:
    result = sentiment(settings, "predict", POSITIVE[0], NEGATIVE[0])
    assert result.returncode == 0, result.stderr
    lines = [json.loads(line) for line in result.stdout.splitlines()]
    assert [(line["text"], line["sentiment"]) for line in lines] == [
        (POSITIVE[0], "positive"),
        (NEGATIVE[0], "negative"),
    ]
    assert all(line["model_version"] == tiny_model for line in lines)
    from_stdin = sentiment(settings, "predict", stdin=f"{POSITIVE[1]}\n\n{NEGATIVE[1]}\n")
    assert [json.loads(x)["sentiment"] for x in from_stdin.stdout.splitlines()] == [
        "positive",
        "negative",
    ]


def test_predict_without_a_model_says_so(settings) -> None:
    result = sentiment(settings, "predict", "hello")
    assert result.returncode == 1
    assert result.stderr.strip() == "Error: no model is active; train one with `sentiment train`"


def test_explain_prints_each_word_with_its_weight(settings, tiny_model) -> None:
    text = "A wonderful film.<br />Awful ending!"
    result = sentiment(settings, "explain", text)
    assert result.returncode == 0, result.stderr
    shown = json.loads(result.stdout)
    assert shown["model_version"] == tiny_model and shown["method"] == "integrated-gradients"
    assert [t["text"] for t in shown["tokens"]] == ["A", "wonderful", "film", "Awful", "ending"]
    assert all(text[t["start"] : t["end"]] == t["text"] for t in shown["tokens"])
    weight = {t["text"]: t["weight"] for t in shown["tokens"]}
    assert weight["wonderful"] > 0 > weight["Awful"]
    assert [r["end"] for r in shown["running_scores"]] == [16, 35]
    for empty in ("  ", "\u200b"):
        assert sentiment(settings, "explain", empty).stderr.strip() == "Error: the review is empty"


def test_predict_refuses_what_the_api_refuses_in_one_line(settings, tiny_model) -> None:
    for texts, stdin, error in (
        (["fine", " \u200b "], None, "Error: review 2 is empty"),
        ([], "fine\nbad \x00 byte\n", "Error: review 2 contains a character that is not text"),
    ):
        result = sentiment(settings, "predict", *texts, stdin=stdin)
        assert (result.returncode, result.stdout, result.stderr.strip()) == (1, "", error)


def test_train_registers_and_activates_a_model(settings, tmp_path) -> None:
    data = write_jsonl(tmp_path / "reviews.jsonl")
    result = sentiment(settings, "train", "--data", str(data), "--preset", "tiny")
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines()[-1].startswith("model v1 active: test accuracy")
    assert (settings.model_dir / "v1" / "model.keras").is_file()


def test_a_training_run_stopped_with_sigterm_leaves_no_staged_folder(settings, tmp_path) -> None:
    data = write_jsonl(tmp_path / "reviews.jsonl")
    env = dict(os.environ, SENTIMENT_VAR=str(settings.var_dir), MODEL_DIR=str(settings.model_dir))
    env["DATABASE_URL"] = settings.database_url
    command = [sys.executable, "-m", "sentiment_cli.main", "train", "--data", str(data)]
    run = subprocess.Popen([*command, "--preset", "tiny"], cwd=ROOT, env=env)
    deadline = time.monotonic() + 120
    while not list(settings.model_dir.glob(".staging-*")):
        assert run.poll() is None and time.monotonic() < deadline, "never staged"
        time.sleep(0.02)
    run.terminate()
    assert run.wait(60) != 0
    assert list(settings.model_dir.iterdir()) == []


def test_train_on_a_bad_file_fails_with_one_line(settings, tmp_path) -> None:
    bad = tmp_path / "reviews.csv"
    bad.write_text("text,label\nhello,positive\n")
    result = sentiment(settings, "train", "--data", str(bad))
    assert result.returncode == 1
    assert result.stderr.strip() == f"Error: {bad}: CSV needs the columns review,sentiment"
    assert not settings.model_dir.exists() or not any(settings.model_dir.iterdir())


def test_a_failed_training_run_leaves_no_staged_folder(settings, tmp_path) -> None:
    data = write_jsonl(tmp_path / "reviews.jsonl")
    result = sentiment(settings, "train", "--data", str(data), "--preset", "tiny", "--seed", "-1")
    assert result.returncode == 1
    assert result.stderr.splitlines()[-1] == "Error: Seed must be between 0 and 2**32 - 1"
    assert not any(settings.model_dir.iterdir())


def test_an_official_folder_without_test_reviews_is_refused_in_one_line(
    settings, tiny_model, tmp_path
) -> None:
    folder = write_imdb_folder(tmp_path / "data")
    shutil.rmtree(folder / "test")
    evaluated = sentiment(settings, "evaluate", "--data", str(folder))
    trained = sentiment(settings, "train", "--data", str(folder), "--preset", "tiny")
    for result in (evaluated, trained):
        assert result.returncode == 1 and "Traceback" not in result.stderr
        assert result.stderr.splitlines()[-1] == (
            f"Error: {folder}: no aclImdb/test/{{pos,neg}}/*.txt reviews found"
        )
    assert [version.name for version in settings.model_dir.iterdir()] == [tiny_model]


def test_up_refuses_a_port_in_use_before_it_starts_anything(settings) -> None:
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        port = holder.getsockname()[1]
        result = sentiment(settings, "up", "--port", str(port))
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert result.stderr.splitlines()[-1] == (
        f"Error: cannot serve on 127.0.0.1:{port}: Address already in use"
    )
    assert not (settings.var_dir / "redis").exists()


def test_up_refuses_to_run_beside_another_up_on_the_same_folder(settings) -> None:
    settings.var_dir.mkdir(parents=True, exist_ok=True)
    with (settings.var_dir / "up.lock").open("w") as held:
        fcntl.flock(held, fcntl.LOCK_EX | fcntl.LOCK_NB)  # as a running `up` holds it
        result = sentiment(settings, "up", "--port", str(free_port()))
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert result.stderr.strip() == f"Error: a `sentiment up` already runs on {settings.var_dir}"
    assert not (settings.var_dir / "redis").exists()


def test_up_says_why_its_redis_did_not_start(settings) -> None:
    (settings.var_dir / "redis").mkdir(parents=True)
    (settings.var_dir / "redis" / "appendonly.aof").write_text("garbage\r\n")
    result = sentiment(settings, "up", "--port", str(free_port()))
    assert result.returncode == 1 and "Traceback" not in result.stderr
    (line,) = result.stderr.splitlines()
    assert line.startswith("Error: embedded Redis did not start on port ")
    assert "Bad file format reading the append only file" in line


def test_db_upgrade_creates_the_schema(tmp_path) -> None:
    with empty_database(tmp_path) as url:
        result = sentiment(Settings(var_dir=tmp_path, database_url=url), "db", "upgrade")
        assert result.returncode == 0, result.stderr
        engine = make_engine(url)
        tables = set(inspect(engine).get_table_names())
        engine.dispose()
    assert {"reviews", "feedback", "model_versions", "alembic_version"} <= tables


def test_commands_that_read_the_database_need_one_in_one_line(tmp_path) -> None:
    data = write_jsonl(tmp_path / "mine.jsonl")
    with empty_database(tmp_path) as url:
        settings = Settings(var_dir=tmp_path, database_url=url, model_dir=tmp_path / "models")
        for command in (
            ["predict", "hello"],
            ["explain", "hello"],
            ["evaluate", "--data", str(data)],
            ["models", "list"],
            ["models", "activate", "v1"],
            ["models", "rollback"],
            ["retrain"],
        ):
            result = sentiment(settings, *command)
            assert result.returncode == 1, command
            assert result.stderr == (
                "Error: no database yet: run `sentiment train` (or `sentiment db upgrade`)\n"
            ), command
    assert not (tmp_path / "new.db").exists()  # asking made no empty SQLite file


def test_a_database_that_cannot_be_opened_is_one_line(settings, tmp_path) -> None:
    junk = tmp_path / "junk.db"
    junk.write_bytes(b"not a database, " * 100)
    for url, error in (
        (f"sqlite:///{junk}", "Error: cannot open the database: file is not a database"),
        ("garbage", "Error: DATABASE_URL must be a database URL whose driver is installed"),
        ("mysql://u@h/x", "Error: DATABASE_URL must be a database URL whose driver is installed"),
    ):
        for command in (["db", "upgrade"], ["train", "--preset", "tiny"]):
            result = sentiment(replace(settings, database_url=url), *command)
            assert result.returncode == 1 and result.stderr.startswith(error), (url, command)
            assert "Traceback" not in result.stderr


def test_evaluate_prints_metrics_for_a_labeled_file(settings, tiny_model, tmp_path) -> None:
    data = write_jsonl(tmp_path / "mine.jsonl", label_style="number")
    result = sentiment(settings, "evaluate", "--data", str(data))
    assert result.returncode == 0, result.stderr
    metrics = json.loads(result.stdout)
    assert metrics["model_version"] == tiny_model
    assert metrics["reviews"] == len(POSITIVE) + len(NEGATIVE)
    assert metrics["accuracy"] == 1.0 and metrics["roc_auc"] == 1.0


def test_evaluate_refuses_bad_input(settings, tiny_model, tmp_path) -> None:
    missing = sentiment(settings, "evaluate", "--data", str(tmp_path / "none.csv"))
    assert missing.returncode == 1 and "no such file" in missing.stderr
    data = write_jsonl(tmp_path / "mine.jsonl")
    unknown = sentiment(settings, "evaluate", "--data", str(data), "--model", "v9")
    assert unknown.returncode == 1
    assert unknown.stderr.strip().startswith("Error: no model version 'v9'")


def test_models_list_activate_and_rollback(settings, tiny_model, tiny_artifact) -> None:
    from tests.conftest import add_model

    second = add_model(settings, tiny_artifact, activate=False)
    listed = sentiment(settings, "models", "list").stdout.splitlines()
    assert [line.split()[:2] for line in listed] == [[second, "tiny"], ["*", tiny_model]]
    assert sentiment(settings, "models", "activate", second).stdout.strip() == f"{second} is active"
    assert sentiment(settings, "models", "list").stdout.startswith(f"* {second}")
    rolled = sentiment(settings, "models", "rollback")
    assert rolled.stdout.strip() == f"rolled back: {tiny_model} is active"
    unknown = sentiment(settings, "models", "activate", "v42")
    assert unknown.returncode == 1 and unknown.stderr.strip() == "Error: no model version v42"


def test_rollback_needs_an_earlier_version(settings, tiny_model) -> None:
    result = sentiment(settings, "models", "rollback")
    assert result.returncode == 1
    assert result.stderr.strip() == "Error: no version was active before this one"


def test_services_need_a_broker(settings, monkeypatch) -> None:
    monkeypatch.delenv("REDIS_URL", raising=False)
    for command in ("web", "worker", "trainer", "beat"):
        result = sentiment(settings, command)
        assert result.returncode == 1
        assert result.stderr.strip() == (
            "Error: REDIS_URL is not set (`sentiment up` starts a Redis itself)"
        )


def test_process_counts_must_be_at_least_one(settings, monkeypatch) -> None:
    monkeypatch.delenv("REDIS_URL", raising=False)
    for command, option in (("up", "--workers"), ("web", "--workers"), ("worker", "--concurrency")):
        result = sentiment(settings, command, option, "0")
        assert result.returncode == 2
        assert result.stderr.splitlines()[-1] == (
            f"Error: Invalid value for '{option}': 0 is not in the range x>=1."
        )


def test_the_web_service_needs_a_secret_key(settings, monkeypatch) -> None:
    monkeypatch.setenv("REDIS_URL", "redis://127.0.0.1:6399/0")
    monkeypatch.delenv("SECRET_KEY", raising=False)
    result = sentiment(settings, "web")
    assert result.returncode == 1
    assert result.stderr.strip() == (
        "Error: SECRET_KEY is not set: every web process signs forms with it"
    )


def test_evaluate_without_a_branch_reports_what_the_other_carries(settings, tiny_model, tmp_path):
    data = write_jsonl(tmp_path / "mine.jsonl")
    for branch in ("lstm", "ngrams"):
        result = sentiment(settings, "evaluate", "--data", str(data), "--without", branch)
        assert result.returncode == 0, result.stderr
        metrics = json.loads(result.stdout)
        assert metrics["without"] == branch and metrics["reviews"] == len(POSITIVE + NEGATIVE)
    unknown = sentiment(settings, "evaluate", "--data", str(data), "--without", "head")
    assert unknown.returncode == 2 and "'head' is not one of 'lstm', 'ngrams'" in unknown.stderr


def test_pretrain_then_train_a_preset_that_starts_from_it(settings, tmp_path) -> None:
    preset = "tiny-pretrained"
    folder = write_imdb_folder(tmp_path / "data", urls=True, unlabeled=True)
    before = sentiment(settings, "train", "--data", str(folder), "--preset", preset)
    assert before.returncode == 1
    assert before.stderr.strip().endswith("run `sentiment pretrain` first")
    for wrong, error in (
        (("--lm-epochs", "0"), "pretrained vectors are 128-wide, not 16"),
        (("--dim", "16", "--units", "4"), "the pretrained LSTM has 4 units, the preset's 8"),
    ):
        result = sentiment(settings, "pretrain", "--data", str(folder), "--epochs", "1", *wrong)
        assert result.returncode == 0, result.stderr
        mismatch = sentiment(settings, "train", "--data", str(folder), "--preset", preset)
        assert mismatch.returncode == 1
        assert mismatch.stderr.splitlines()[-1] == f"Error: {error}"
    args = ("pretrain", "--data", str(folder), "--epochs", "2", "--dim", "16", "--units", "8")
    result = sentiment(settings, *args)
    assert result.returncode == 0, result.stderr
    meta = json.loads((settings.model_dir / "pretrained" / "p3" / "pretrain.json").read_text())
    # 12 training reviews and 4 unlabeled ones: a repeat and a copy of a test review left out
    assert meta["texts"] == 16 and len(meta["lm_losses"]) == len(meta["lm_backward_losses"]) == 3
    assert result.stdout.strip() == f"pretrained p3: {meta['words']} words from 16 reviews"
    assert "pretraining: 100%" in result.stderr  # the progress bar
    trained = sentiment(settings, "train", "--data", str(folder), "--preset", preset)
    assert trained.returncode == 0, trained.stderr
    metrics = json.loads((settings.model_dir / "v1" / "report" / "metrics.json").read_text())
    assert metrics["pretrained"] == "p3" and metrics["test_accuracy"] == 1.0


def test_pretrain_needs_unlabeled_reviews(settings, tmp_path) -> None:
    data = write_jsonl(tmp_path / "mine.jsonl")
    result = sentiment(settings, "pretrain", "--data", str(data))
    assert result.returncode == 1
    assert result.stderr.strip() == f"Error: no unlabeled reviews beside {data}: give --unlabeled"
