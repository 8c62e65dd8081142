"""Overhead per review: the whole service under closed-loop load, against the in-process scorer
on the same reviews and model, with the CPU each process spends per review. Run by hand (it
takes the whole machine):

    .venv/bin/python bench/overhead.py --data ../shared/data/imdb/aclImdb_v1_labeled.tar.gz \\
        --model var/models/v1 \\
        --database-url postgresql+psycopg://sentiment:sentiment@127.0.0.1:5432/sentiment

1. In-process: the worker's scoring function on the reviews, in batches of 1,024: reviews/s and
   CPU seconds per review, all threads counted.
2. Closed loop: `--clients` clients each submit one review (POST /api/v1/reviews), wait for it
   with GET /api/v1/reviews/<id>?wait=30, and go on with the next, for `--warm-up` seconds
   unmeasured (the workers compile the batch shapes they meet), then for `--seconds`. Reviews/s,
   latency from submission to result as the client sees it, and the CPU seconds per review of
   each process: web (gunicorn and its workers), the scoring workers, Redis, PostgreSQL and the
   load client itself.
3. Open loop at half the closed loop's rate, for `--seconds`: latency at that load.
4. The web's CPU for a request that does nothing (GET /healthz): the floor under each of the
   two requests a review takes.
5. How long the service took to say ready (/readyz), and to score a review submitted then.

The service runs on a scratch database created on the server of `--database-url` (the role
needs CREATEDB) and dropped afterwards; without it, on SQLite, whose work is then the web's and
the workers'.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import statistics
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager, nullcontext
from pathlib import Path

import psutil
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from scoring import Service  # noqa: E402

from trainer.data import load_dataset  # noqa: E402

WAIT_S = 30


@contextmanager
def scratch_database(url: str) -> Iterator[str]:
    """A new empty database on the server of `url`, dropped afterwards."""
    name = f"bench_{uuid.uuid4().hex[:8]}"
    admin = create_engine(url, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(text(f"CREATE DATABASE {name}"))
    try:
        yield make_url(url).set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as connection:
            connection.execute(text(f"DROP DATABASE {name} WITH (FORCE)"))
        admin.dispose()


def in_process(model_dir: Path, texts: list[str]) -> tuple[float, float]:
    """Reviews/s and CPU seconds per review of the scoring function in this process."""
    from sentiment_inference.scoring import Scorer

    scorer = Scorer.load(model_dir.name, model_dir)
    scorer.compile_all()
    cpu, wall = time.process_time(), time.perf_counter()
    for start in range(0, len(texts), 1024):
        scorer.score(texts[start : start + 1024])
    cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
    return len(texts) / wall, cpu / len(texts)


class Client:
    """One keep-alive HTTP connection to the service."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.connection = http.client.HTTPConnection("127.0.0.1", port, timeout=WAIT_S + 30)

    def call(self, method: str, path: str, body: dict | None = None) -> tuple[int, dict]:
        status, _, answer = self.exchange(method, path, body)
        return status, answer

    def exchange(
        self, method: str, path: str, body: dict | None = None
    ) -> tuple[int, http.client.HTTPMessage, dict]:
        """The response's status, headers and JSON body."""
        data = json.dumps(body).encode() if body is not None else None
        headers = {"Content-Type": "application/json"} if data else {}
        try:
            self.connection.request(method, path, body=data, headers=headers)
            response = self.connection.getresponse()
        except (http.client.HTTPException, ConnectionError):  # the server closed an idle one
            self.connection.close()
            self.connection.request(method, path, body=data, headers=headers)
            response = self.connection.getresponse()
        return response.status, response.headers, json.loads(response.read())

    def review(self, review: str) -> float:
        """Submit one review and wait for its result; the seconds it took."""
        started = time.perf_counter()
        status, body = self.call("POST", "/api/v1/reviews", {"text": review})
        if status != 202:
            raise RuntimeError(f"submission answered {status}: {body}")
        while body.get("status") not in ("done", "failed"):
            status, body = self.call("GET", f"/api/v1/reviews/{body['id']}?wait={WAIT_S}")
            if status != 200:
                raise RuntimeError(f"the review answered {status}: {body}")
        if body["status"] != "done":
            raise RuntimeError(f"review {body['id']} failed: {body.get('error')}")
        return time.perf_counter() - started


def quantiles(latencies: list[float]) -> dict[str, float]:
    cut = statistics.quantiles(latencies, n=100)
    return {"p50": cut[49], "p95": cut[94], "p99": cut[98]}


class Processes:
    """The CPU seconds (user and system) spent so far by each group of the service's processes,
    children included."""

    def __init__(self, service: Service, workers: int) -> None:
        self.groups = {
            "web": [service.processes[-1]],
            "workers": service.processes[1 : 1 + workers],
            "redis": [service.processes[0]],
        }
        self.with_database = service.settings.database_url.startswith("postgresql")

    def cpu(self) -> dict[str, float]:
        out = {name: sum(tree_cpu(p.pid) for p in group) for name, group in self.groups.items()}
        if self.with_database:
            out["postgres"] = sum(
                busy(p) for p in psutil.process_iter(["name"]) if p.info["name"] == "postgres"
            )
        out["load client"] = busy(psutil.Process())
        return out


def busy(process: psutil.Process) -> float:
    try:
        times = process.cpu_times()
    except psutil.NoSuchProcess:
        return 0.0
    return times.user + times.system


def tree_cpu(pid: int) -> float:
    root = psutil.Process(pid)
    return sum(busy(p) for p in [root, *root.children(recursive=True)])


class Latencies:
    """Each review's latency, sent from many client threads; the first failure stops them."""

    def __init__(self) -> None:
        self.values: list[float] = []
        self.errors: list[str] = []
        self.lock = threading.Lock()

    def review(self, client: Client, text: str) -> bool:
        """Send one review and wait for it; False once any client has failed."""
        try:
            latency = client.review(text)
        except (RuntimeError, OSError) as exc:
            self.errors.append(f"{type(exc).__name__}: {exc}")
            return False
        with self.lock:
            self.values.append(latency)
        return not self.errors

    def check(self) -> list[float]:
        if self.errors:
            raise RuntimeError(f"{len(self.errors)} clients failed; the first: {self.errors[0]}")
        return self.values


def run_threads(target: Callable[[int], None], count: int) -> None:
    """Run `target(k)` for k in range(count), each in a thread of its own, to the end."""
    threads = [threading.Thread(target=target, args=(k,)) for k in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()


def closed_loop(
    port: int, texts: list[str], clients: int, seconds: float
) -> tuple[int, float, list[float]]:
    """Reviews finished, the seconds it took, and each one's latency."""
    latencies = Latencies()
    started = time.perf_counter()

    def run(k: int) -> None:
        client, sent = Client(port), k
        while time.perf_counter() < started + seconds:
            if not latencies.review(client, texts[sent % len(texts)]):
                return
            sent += clients

    run_threads(run, clients)
    done = latencies.check()
    return len(done), time.perf_counter() - started, done


def empty_requests(port: int, processes: Processes, count: int = 2000) -> float:
    """The web's CPU seconds per request that does nothing (GET /healthz), from 4 clients: the
    floor under every request of the service."""

    def run(_: int) -> None:
        client = Client(port)
        for _ in range(count // 4):
            client.call("GET", "/healthz")

    before = processes.cpu()["web"]
    run_threads(run, 4)
    return (processes.cpu()["web"] - before) / count


def open_loop(port: int, texts: list[str], rate: float, seconds: float) -> list[float]:
    """Reviews offered at `rate` per second for `seconds`; each one's latency."""
    latencies = Latencies()
    started = time.perf_counter()
    senders = max(8, int(rate))  # enough that a waiting sender never delays the next review

    def run(k: int) -> None:
        client = Client(port)
        for sent in range(k, int(rate * seconds), senders):
            time.sleep(max(0.0, started + sent / rate - time.perf_counter()))
            if not latencies.review(client, texts[sent % len(texts)]):
                return

    run_threads(run, senders)
    return latencies.check()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", required=True, type=Path)
    parser.add_argument("--model", required=True, type=Path, help="A model version folder.")
    parser.add_argument("--database-url", help="A PostgreSQL server (default: SQLite).")
    parser.add_argument("--reviews", type=int, default=4096, help="Test reviews to send.")
    parser.add_argument("--workers", type=int, default=2, help="Scoring worker processes.")
    parser.add_argument("--batch", type=int, default=64, help="The workers' BATCH_SIZE.")
    parser.add_argument("--clients", type=int, default=48)
    parser.add_argument("--seconds", type=float, default=60)
    parser.add_argument("--warm-up", type=float, default=120, help="Seconds of load first.")
    args = parser.parse_args()

    texts = load_dataset(args.data).test.sample(None, 7).texts[: args.reviews]
    scorer_rate, scorer_cpu = in_process(args.model, texts)
    database = scratch_database(args.database_url) if args.database_url else nullcontext("")
    with database as url:
        service = Service(args.model, args.workers, args.batch, database_url=url)
        try:
            processes = Processes(service, args.workers)
            # Unmeasured: the web's connections open, and the workers compile the batch shapes
            # this load makes (each the first time it comes: Scorer.compile).
            closed_loop(service.port, texts, args.clients, args.warm_up)
            before = processes.cpu()
            done, seconds, latencies = closed_loop(service.port, texts, args.clients, args.seconds)
            after = processes.cpu()
            half = open_loop(service.port, texts, done / seconds / 2, args.seconds)
            floor = empty_requests(service.port, processes)
        finally:
            service.close()

    rate = done / seconds
    cpu = {name: (after[name] - before[name]) / done for name in after}
    database = "PostgreSQL" if url else "SQLite"
    print(f"model {args.model}, {os.cpu_count()} CPUs, {args.workers} workers, BATCH_SIZE "
          f"{args.batch}, {args.clients} clients, {database}\n")  # fmt: skip
    print("| | reviews/s | vs scorer | p50 ms | p95 ms | p99 ms |")
    print("| --- | ---: | ---: | ---: | ---: | ---: |")
    print(f"| in-process scorer, batches of 1,024 | {scorer_rate:,.0f} | 1.00 | | | |")
    for name, per_s, lat in (
        (f"closed loop, {args.clients} clients", rate, latencies),
        (f"open loop at {rate / 2:,.0f}/s offered", len(half) / args.seconds, half),
    ):
        q = quantiles(lat)
        print(f"| {name} | {per_s:,.0f} | {per_s / scorer_rate:.2f} | {q['p50'] * 1000:.0f} "
              f"| {q['p95'] * 1000:.0f} | {q['p99'] * 1000:.0f} |")  # fmt: skip
    service_cpu = sum(v for k, v in cpu.items() if k != "load client")
    print("\n| CPU ms per review | " + " | ".join(cpu) + " | service | in-process scorer |")
    print("| --- |" + " ---: |" * (len(cpu) + 2))
    print(f"| closed loop | {' | '.join(f'{v * 1000:.2f}' for v in cpu.values())} "
          f"| {service_cpu * 1000:.2f} ({service_cpu / scorer_cpu:.1f}x) "
          f"| {scorer_cpu * 1000:.2f} |")  # fmt: skip
    print(f"\nAn empty request (GET /healthz) costs the web {floor * 1000:.2f} ms of CPU; a review "
          f"takes two requests.")  # fmt: skip
    print(f"\nReady {service.ready_s:.1f} s after start; a review submitted then was done "
          f"{service.first_review_s * 1000:.0f} ms later.")  # fmt: skip


if __name__ == "__main__":
    main()
