"""docker-compose.yml, checked without Docker: its services, commands and environment agree
with the CLI and the settings, and the commands it runs serve reviews on local Redis and
PostgreSQL servers."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from dataclasses import fields

import click
import pytest
import yaml

from sentiment_cli.main import cli
from sentiment_cli.processes import free_port, stop
from sentiment_core.settings import Settings
from tests.conftest import ROOT
from tests.test_end_to_end import call, wait_for_results

COMPOSE = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
SERVICES = COMPOSE["services"]
APP_SERVICES = [name for name, s in SERVICES.items() if s.get("command", [""])[0] == "sentiment"]
SECRETS = {"SECRET_KEY", "ADMIN_TOKEN", "POSTGRES_PASSWORD"}


def settings_variables() -> set[str]:
    """The environment variables the settings declare."""
    return {item.metadata["env"] for item in fields(Settings)}


def resolve(command: list[str]) -> click.Command:
    """The CLI command that `command` runs, with its options parsed as the CLI would."""
    group: click.Command = cli
    args = command[1:]
    while isinstance(group, click.Group):
        group, args = group.commands[args[0]], args[1:]
    group.make_context(command[1], list(args))
    return group


def test_the_services_are_the_ones_the_project_runs() -> None:
    assert set(SERVICES) == {
        "redis", "postgres", "migrate", "web", "worker", "explainer", "worker-gpu", "beat",
        "trainer",
    }  # fmt: skip
    assert {SERVICES[name]["image"] for name in APP_SERVICES} == {
        "sentiment-service:latest", "sentiment-service:gpu",
    }  # fmt: skip
    for name in ("redis", "postgres", "web", "worker", "explainer"):
        assert SERVICES[name]["healthcheck"]["test"], name
    assert "--appendonly" in SERVICES["redis"]["command"]
    devices = SERVICES["worker-gpu"]["deploy"]["resources"]["reservations"]["devices"]
    assert devices == [{"driver": "nvidia", "count": 1, "capabilities": ["gpu"]}]
    assert SERVICES["migrate"]["restart"] == "no"
    migrated = SERVICES["web"]["depends_on"]["migrate"]["condition"]
    assert migrated == "service_completed_successfully"


def test_every_command_is_a_cli_command(monkeypatch) -> None:
    commands = {name: resolve(SERVICES[name]["command"]).name for name in APP_SERVICES}
    assert commands == {
        "migrate": "upgrade", "web": "web", "worker": "worker", "explainer": "worker",
        "worker-gpu": "worker", "beat": "beat", "trainer": "trainer",
    }  # fmt: skip


def test_the_environment_is_what_the_settings_read_and_secrets_have_no_default() -> None:
    known = settings_variables()
    text = (ROOT / "docker-compose.yml").read_text()
    for name in APP_SERVICES:
        assert set(SERVICES[name]["environment"]) <= known, name
        assert "/models" in [v.split(":")[1] for v in SERVICES[name]["volumes"]]
        assert SERVICES[name]["environment"]["MODEL_DIR"] == "/models"
    assert {"SECRET_KEY", "ADMIN_TOKEN"} <= set(SERVICES["web"]["environment"])
    for secret in SECRETS:
        uses = re.findall(r"\$\{" + secret + r"([^}]*)\}", text)
        assert uses and all(use.startswith(":?") for use in uses), secret
    referenced = set(re.findall(r"\$\{(\w+)", text))
    example = (ROOT / ".env.example").read_text()
    documented = set(re.findall(r"^(\w+)=", example, re.MULTILINE))
    assert referenced == documented
    assert all(re.search(rf"^{s}=$", example, re.MULTILINE) for s in SECRETS)


@pytest.mark.integration
def test_the_compose_commands_serve_reviews_on_local_servers(
    settings, tiny_artifact, redis_server, postgres_server, tmp_path
) -> None:
    from dataclasses import replace

    from tests.conftest import add_model

    port = free_port()
    env = dict(os.environ) | {
        name: value for name, value in SERVICES["web"]["environment"].items() if "$" not in value
    }
    env |= {
        "DATABASE_URL": postgres_server.url,
        "REDIS_URL": redis_server,
        "MODEL_DIR": str(tmp_path / "models"),
        "SENTIMENT_VAR": str(tmp_path / "var"),
        "PROMETHEUS_MULTIPROC_DIR": str(tmp_path / "metrics"),
        "SECRET_KEY": "compose-test",
        "ADMIN_TOKEN": "compose-test",
    }

    def run(name: str) -> subprocess.Popen:
        command = [sys.executable, "-m", "sentiment_cli.main", *SERVICES[name]["command"][1:]]
        command = [str(port) if arg == "8000" else arg for arg in command]
        # Each container has its own metrics port 9100; here they share one host.
        command = [str(free_port()) if arg == "9100" else arg for arg in command]
        command = ["127.0.0.1" if arg == "0.0.0.0" else arg for arg in command]
        with (tmp_path / f"{name}.log").open("w") as log:
            return subprocess.Popen(command, cwd=ROOT, env=env, stdout=log, stderr=log)

    migrate = run("migrate")
    assert migrate.wait(60) == 0, (tmp_path / "migrate.log").read_text()
    add_model(replace(settings, database_url=postgres_server.url, model_dir=tmp_path / "models"),
              tiny_artifact)  # fmt: skip
    names = ("worker", "explainer", "beat", "trainer", "web")
    services = [run(name) for name in names]
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                if call(f"{base}/healthz")[0] == 200:
                    break
            except OSError:
                assert time.monotonic() < deadline, (tmp_path / "web.log").read_text()
                time.sleep(0.5)
        _, body = call(f"{base}/api/v1/reviews", {"text": "a wonderful film, I loved it"})
        result = wait_for_results(base, [body["id"]])[body["id"]]
        assert result["status"] == "done" and result["sentiment"] == "positive"
        explanation = f"{base}/api/v1/reviews/{body['id']}/explanation"
        assert call(explanation, {})[0] == 202
        # The explainer runs at nice 19: on a machine busy with other tests it starts slowly.
        deadline = time.monotonic() + 180
        while (explained := call(explanation)[1])["status"] == "queued":
            assert time.monotonic() < deadline, (tmp_path / "explainer.log").read_text()
            time.sleep(0.2)
        assert explained["status"] == "done", explained
        # The web's healthcheck, run as compose runs it: healthy, as reviews are scored.
        probe = SERVICES["web"]["healthcheck"]["test"]
        assert probe[:2] == ["CMD", "python"] and "/readyz'" in probe[-1]
        probe = [sys.executable, *probe[2:-1], probe[-1].replace(":8000/", f":{port}/")]
        assert subprocess.run(probe, timeout=30).returncode == 0
        # The workers' healthcheck: healthy while a worker on this host answers through Redis.
        for name in ("worker", "explainer"):
            assert SERVICES[name]["healthcheck"]["test"] == ["CMD", "python", "-m", "worker.health"]
        health = [sys.executable, "-m", "worker.health"]
        assert subprocess.run(health, cwd=ROOT, env=env, timeout=60).returncode == 0
        assert all(service.poll() is None for service in services)
        stop([services[names.index("worker")], services[names.index("explainer")]])
        unhealthy = subprocess.run(health, cwd=ROOT, env=env, capture_output=True, timeout=60)
        assert unhealthy.returncode == 1
        assert unhealthy.stderr.decode().startswith("unhealthy: celery@"), unhealthy.stderr
    finally:
        stop(services)
        for name in ("migrate", *names):
            print(f"--- {name} ---\n" + (tmp_path / f"{name}.log").read_text())
