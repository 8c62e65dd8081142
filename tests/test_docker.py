"""The README's deploy, under a real Docker engine: the project's Dockerfile and
docker-compose.yml built and brought up with two workers, a first model trained in the trainer's
container, then driven through the published port while a worker is killed, every worker is
stopped, the pool is scaled and Redis restarts. Slow (minutes, and an image build): `make
test-docker` runs it, as CI does; `make test` leaves it out."""

from __future__ import annotations

import json
import os
import secrets
import shutil
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from prometheus_client import CollectorRegistry, multiprocess

from sentiment_cli.processes import free_port
from sentiment_core.readiness import READY_TTL_S
from tests.conftest import ROOT
from tests.factories import write_jsonl
from tests.test_compose import SERVICES
from tests.test_end_to_end import call, readiness, submit_batches

pytestmark = pytest.mark.docker


def compose_command() -> list[str] | None:
    """`docker compose` or `docker-compose`, whichever this machine has; None without a Docker
    engine that answers."""
    if shutil.which("docker") is None:
        return None
    if subprocess.run(["docker", "info"], capture_output=True, timeout=60).returncode != 0:
        return None
    for command in (["docker", "compose"], ["docker-compose"]):
        if shutil.which(command[0]):
            version = subprocess.run([*command, "version"], capture_output=True, timeout=60)
            if version.returncode == 0:
                return command
    return None


class Stack:
    """One compose project of its own: its name, secrets and published port."""

    def __init__(self, compose: list[str], scratch: Path) -> None:
        self.project = f"sentiment-test-{secrets.token_hex(4)}"
        self.command = [*compose, "--project-name", self.project]
        self.command += ["--file", str(ROOT / "docker-compose.yml")]
        self.scratch = scratch
        port = free_port()
        self.base = f"http://127.0.0.1:{port}"
        self.env = dict(os.environ) | {
            "POSTGRES_PASSWORD": secrets.token_hex(16),
            "SECRET_KEY": secrets.token_hex(32),
            "ADMIN_TOKEN": secrets.token_hex(16),
            "WEB_PORT": str(port),
            # One submission per batch, so a worker holds at most two (its prefetch) and the
            # load spreads over the pool.
            "BATCH_SIZE": "1",
            # What a killed worker held is sent again within seconds, not minutes.
            "RECONCILE_EVERY_S": "2",
            "RECONCILE_AFTER_S": "5",
            "SUBMIT_RATE_LIMIT": "10000/minute",  # every submission comes from this one address
        }

    def compose(self, *args: str, stdin: bytes | None = None, timeout: float = 300) -> str:
        return self.run([*self.command, *args], stdin=stdin, timeout=timeout)

    def run(self, command: list[str], stdin: bytes | None = None, timeout: float = 60) -> str:
        done = subprocess.run(
            command, cwd=ROOT, env=self.env, input=stdin, capture_output=True, timeout=timeout
        )
        output = done.stdout.decode(errors="replace") + done.stderr.decode(errors="replace")
        assert done.returncode == 0, f"{' '.join(command)} failed:\n{output}"
        return done.stdout.decode()

    def containers(self, service: str) -> list[str]:
        """The ids of the service's running containers, oldest first."""
        labels = [f"com.docker.compose.project={self.project}"]
        labels.append(f"com.docker.compose.service={service}")
        filters = [arg for label in labels for arg in ("--filter", f"label={label}")]
        return self.run(["docker", "ps", "--quiet", *filters]).split()[::-1]

    def health(self, container: str | None = None) -> dict:
        """A container's health as Docker keeps it (the web's by default): Status,
        FailingStreak, Log."""
        if container is None:
            (container,) = self.containers("web")
        inspect = ["docker", "inspect", "--format={{json .State.Health}}", container]
        return json.loads(self.run(inspect))

    def healthy(self, service: str) -> bool:
        """Whether Docker calls every container of `service` healthy."""
        containers = self.containers(service)
        return bool(containers) and all(
            self.health(container)["Status"] == "healthy" for container in containers
        )

    def scored(self, container: str) -> float:
        """Results a worker container has written: its pool's counter, summed over every
        process it ran; read from its metrics folder, which outlives a killed container."""
        folder = self.scratch / secrets.token_hex(4)
        self.run(["docker", "cp", f"{container}:/tmp/metrics", str(folder)])
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry, path=str(folder))
        return sum(
            sample.value
            for metric in registry.collect()
            for sample in metric.samples
            if sample.name == "sentiment_reviews_scored_total"
        )

    def submit(self, submissions: int, per_submission: int) -> list[int]:
        return submit_batches(self.base, submissions, per_submission)

    def reviews(self) -> dict[str, int]:
        """Reviews by status, as the API's stats count them."""
        return call(f"{self.base}/api/v1/stats")[1]["reviews"]

    def wait(self, condition: Callable[[], bool], timeout: float, what: str) -> None:
        deadline = time.monotonic() + timeout
        while not condition():
            assert time.monotonic() < deadline, f"not {what} in {timeout} s\n{self.logs()}"
            time.sleep(0.5)

    def logs(self) -> str:
        return self.compose("logs", "--no-color", "--tail=30", timeout=60)


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    """The project built and up with two workers, and torn down with its volumes afterwards."""
    compose = compose_command()
    if compose is None:
        reason = "needs a Docker engine and compose (CI installs them: see .ci/run)"
        if os.environ.get("CI"):
            pytest.fail(reason)
        pytest.skip(reason)
    stack = Stack(compose, tmp_path_factory.mktemp("docker"))
    stack.compose("build", timeout=1800)
    try:
        stack.compose("up", "--detach", "--scale", "worker=2")
        stack.wait(lambda: served(stack.base), 120, "serving HTTP")
        yield stack
    finally:
        stack.compose("down", "--volumes", "--remove-orphans", timeout=120)


def served(base: str) -> bool:
    try:
        return call(f"{base}/healthz")[0] == 200
    except OSError:
        return False


def workers_ready(stack: Stack, count: int) -> bool:
    status, body = readiness(stack.base)
    return status == 200 and body["checks"]["workers"] == count


@pytest.fixture(scope="module")
def model(stack: Stack) -> str:
    """A first model, trained in the trainer's container on reviews written here (the IMDb
    archive is not reachable) and activated, as the first model is."""
    data = write_jsonl(stack.scratch / "reviews.jsonl").read_bytes()
    path = "/var/lib/sentiment/reviews.jsonl"
    script = f"cat > {path} && sentiment train --data {path} --preset tiny"
    output = stack.compose("exec", "-T", "trainer", "sh", "-c", script, stdin=data)
    assert output.splitlines()[-1].startswith("model v1 active"), output
    return "v1"


def test_not_ready_before_a_model_exists(stack: Stack) -> None:
    status, body = readiness(stack.base)
    assert status == 503 and body["checks"]["model"] == "none active", body
    stack.wait(lambda: bool(stack.health()["Log"]), 60, "probed by Docker")
    health = stack.health()
    assert health["Status"] == "starting"
    assert all(probe["ExitCode"] != 0 for probe in health["Log"]), health


def test_ready_once_the_trained_model_is_served(stack: Stack, model: str) -> None:
    stack.wait(lambda: stack.health()["Status"] == "healthy", 300, "healthy")
    for service in ("worker", "explainer"):  # each answers its healthcheck's ping
        stack.wait(lambda service=service: stack.healthy(service), 180, f"{service} healthy")
    stack.wait(lambda: workers_ready(stack, 2), 60, "both workers ready")
    status, body = readiness(stack.base)
    assert status == 200 and body["checks"] == {
        "database": "ok", "broker": "ok", "model": model, "workers": 2,
    }  # fmt: skip


def test_1000_reviews_are_all_scored_though_a_worker_is_killed(stack: Stack, model: str) -> None:
    survivor, doomed = stack.containers("worker")
    done = stack.reviews()["done"]
    ids = stack.submit(40, 10)
    stack.wait(lambda: stack.scored(doomed) > 0, 60, "scoring on both workers")
    # Both paused, then the doomed one killed: it dies with what it had taken (a worker paused
    # while waiting is still handed the next message), which only the database still owes.
    stack.run(["docker", "pause", survivor, doomed])
    ids += stack.submit(60, 10)
    stack.run(["docker", "kill", doomed])
    stack.run(["docker", "unpause", survivor])
    assert len(ids) == 1000
    stack.wait(lambda: stack.reviews()["done"] == done + 1000, 120, "all scored")
    assert stack.reviews() == {"done": done + 1000, "failed": 0, "queued": 0, "scoring": 0}
    # Each result written once. The killed worker may have died between a commit and counting
    # it, so the count may miss its last batch (one submission, 10 reviews).
    assert 1000 - 10 <= stack.scored(survivor) + stack.scored(doomed) <= 1000


def test_the_healthcheck_fails_while_no_worker_scores(stack: Stack, model: str) -> None:
    stack.compose("stop", "worker")
    assert stack.containers("worker") == []
    stack.wait(lambda: readiness(stack.base)[0] == 503, READY_TTL_S + 10, "unready")
    # Docker calls the web unhealthy after `retries` failed probes in a row, `interval` apart.
    check = SERVICES["web"]["healthcheck"]
    unhealthy_s = int(check["interval"].rstrip("s")) * check["retries"]
    stack.wait(lambda: stack.health()["Status"] == "unhealthy", unhealthy_s + 10, "unhealthy")
    stack.compose("start", "worker")
    stack.wait(lambda: stack.health()["Status"] == "healthy", 300, "healthy again")
    assert stack.health()["FailingStreak"] == 0


def test_a_worker_added_with_scale_takes_its_share(stack: Stack, model: str) -> None:
    before = stack.containers("worker")
    stack.compose("up", "--detach", "--scale", "worker=3")
    workers = stack.containers("worker")
    assert len(workers) == 3 and set(before) < set(workers)
    stack.wait(lambda: workers_ready(stack, 3), 300, "three workers ready")
    scored = {worker: stack.scored(worker) for worker in workers}
    done = stack.reviews()["done"]
    stack.submit(30, 10)
    stack.wait(lambda: stack.reviews()["done"] == done + 300, 120, "all scored")
    assert all(stack.scored(worker) > scored[worker] for worker in workers), scored


def test_restarting_redis_loses_nothing(stack: Stack, model: str) -> None:
    workers = stack.containers("worker")
    written = sum(stack.scored(worker) for worker in workers)
    done = stack.reviews()["done"]
    # Paused, the workers take nothing: the reviews are still queued when Redis restarts.
    stack.run(["docker", "pause", *workers])
    stack.submit(50, 10)
    assert stack.reviews()["queued"] == 500
    stack.compose("restart", "redis")
    stack.run(["docker", "unpause", *workers])
    stack.wait(lambda: stack.reviews()["done"] == done + 500, 120, "all scored")
    assert stack.reviews() == {"done": done + 500, "failed": 0, "queued": 0, "scoring": 0}
    assert sum(stack.scored(worker) for worker in workers) - written == 500
