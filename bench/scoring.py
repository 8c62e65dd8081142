"""Scoring speed, from the notebook's way to the whole service, in one run on the IMDb test
reviews. Prints one markdown table.

    .venv/bin/python bench/scoring.py --data ../shared/data/imdb/aclImdb_v1_labeled.tar.gz \\
        --model var/models/v2

1. the notebook's way: `model.predict` on one padded review at a time;
2. Keras `model.predict(batch_size=256)` on the same reviews, padded to the window;
3. the worker's scoring function (`Scorer.score`) in-process, on batches of 1,024 reviews (what
   a worker gathers under load) and of 64;
4. the same on short reviews (first sentences of test reviews, 20 words or fewer);
5. end to end: reviews submitted one per request over HTTP by 4 clients to a running service
   (gunicorn web, Redis, worker pool, SQLite) with 1 and 2 worker processes: the most it
   sustains, then p50/p95/p99 latency from submission to result (server timestamps) at about
   half that rate, offered open-loop.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path

from sentiment_cli.main import EXPLAINER
from sentiment_cli.processes import free_port, start_redis, stop
from sentiment_core.db import Review, ReviewStatus, as_utc, make_engine, make_sessionmaker
from sentiment_core.migrate import upgrade_database
from sentiment_core.queue import MAINTENANCE_QUEUE, SCORING_QUEUE
from sentiment_core.registry import register_version
from sentiment_core.settings import Settings
from trainer.data import load_dataset

ROOT = Path(__file__).resolve().parent.parent


def rate(count: int, seconds: float) -> float:
    return count / seconds if seconds else float("inf")


def timed(fn, *args):
    started = time.perf_counter()
    fn(*args)
    return time.perf_counter() - started


def short_reviews(texts: list[str], limit: int) -> list[str]:
    out = []
    for text in texts:
        first = re.split(r"(?<=[.!?])\s", text.replace("<br />", " "), maxsplit=1)[0].strip()
        if 0 < len(first.split()) <= 20:
            out.append(first)
        if len(out) == limit:
            break
    return out


def in_process(model_dir: Path, texts: list[str], notebook_n: int) -> list[tuple]:
    import keras

    from sentiment_inference.scoring import Scorer

    scorer = Scorer.load(model_dir.name, model_dir)
    model = keras.saving.load_model(model_dir / "model.keras", compile=False)
    pre = scorer.preprocessor
    scorer.compile_all()  # every shape, as a worker has them after its first minutes
    model.predict(pre.pad(pre.encode(texts[:2])), verbose=0)

    def notebook(items):
        for text in items:
            model.predict(pre.pad(pre.encode([text])), verbose=0)

    def keras_batched(items):
        model.predict(pre.pad(pre.encode(items)), batch_size=256, verbose=0)

    def in_batches(size):
        def run(items):
            for start in range(0, len(items), size):
                scorer.score(items[start : start + size])

        return run

    shorts = short_reviews(texts, len(texts))
    rows = [
        ("1. notebook: predict per review", notebook_n, timed(notebook, texts[:notebook_n])),
        ("2. Keras predict, batch 256", len(texts), timed(keras_batched, texts)),
        ("3. scoring function, batches of 1024", len(texts), timed(in_batches(1024), texts)),
        ("3b. scoring function, batches of 64", len(texts), timed(in_batches(64), texts)),
        ("4. scoring function, short reviews, batches of 1024", len(shorts),
         timed(in_batches(1024), shorts)),
    ]  # fmt: skip
    return [(name, n, rate(n, seconds)) for name, n, seconds in rows]


class Service:
    """web (gunicorn) + Redis + N worker processes + a database (SQLite in a scratch folder, or
    an empty one at `database_url`)."""

    def __init__(
        self,
        model_dir: Path,
        workers: int,
        batch: int,
        database_url: str = "",
        explainer: bool = False,
        worker_threads: int = 0,
        max_backlog: int = 0,
        web_threads: int = 32,
    ) -> None:
        """With `explainer`, as `sentiment up` runs it: the workers score, and a worker of its own
        at a lower CPU priority explains. Each worker has `worker_threads` TensorFlow threads
        (default: the cores shared out); the web runs 2 processes of `web_threads` threads.
        `max_backlog` 0 lets the benchmarks queue as much as they like, to drain it."""
        self.var = Path(tempfile.mkdtemp(prefix="sentiment-bench-"))
        self.settings = Settings(var_dir=self.var, database_url=database_url)
        upgrade_database(self.settings)
        staged = self.var / "staged"
        shutil.copytree(model_dir, staged, ignore=shutil.ignore_patterns("report"))
        self.sessions = make_sessionmaker(make_engine(self.settings.database_url))
        with self.sessions() as session:
            register_version(
                session, staged_dir=staged, model_dir=self.settings.model_dir,
                preset="bench", metrics={},
            )  # fmt: skip
        redis_process, self.redis_url = start_redis(self.var / "redis", persist=False)
        self.port = free_port()
        env = dict(
            os.environ, SENTIMENT_VAR=str(self.var), REDIS_URL=self.redis_url,
            BATCH_SIZE=str(batch), DATABASE_URL=self.settings.database_url,
            WORKER_THREADS=str(worker_threads or max(1, (os.cpu_count() or 1) // workers)),
            SECRET_KEY="bench", SUBMIT_RATE_LIMIT="1000000/second",  # the load is one client
            MAX_BACKLOG=str(max_backlog),
        )  # fmt: skip
        me = [sys.executable, "-m", "sentiment_cli.main"]
        quiet = {"stdout": subprocess.DEVNULL, "stderr": subprocess.DEVNULL, "cwd": ROOT}
        self.processes = [redis_process]
        worker = [*me, "worker", "--loglevel", "WARNING"]
        if explainer:
            worker += ["--queues", f"{SCORING_QUEUE},{MAINTENANCE_QUEUE}"]
        self.processes += [subprocess.Popen(worker, env=env, **quiet) for _ in range(workers)]
        if explainer:
            self.processes.append(
                subprocess.Popen([*me, *EXPLAINER, "--loglevel", "WARNING"], env=env, **quiet)
            )
        web = [*me, "web", "--port", str(self.port), "--workers", "2"]
        self.processes.append(
            subprocess.Popen([*web, "--threads", str(web_threads)], env=env, **quiet)
        )
        self.base = f"http://127.0.0.1:{self.port}"
        self._wait_ready()

    def _wait_ready(self) -> None:
        """Wait until /readyz says ready, then score a first review. Records the seconds from
        start to ready (`ready_s`, to 0.5 s) and from ready to that review done
        (`first_review_s`, to 0.05 s)."""
        started = time.monotonic()
        while time.monotonic() < started + 120:
            try:
                with urllib.request.urlopen(f"{self.base}/readyz", timeout=2):
                    pass
                ready = time.monotonic()
                self.submit(["warm up the worker"])
                if self.wait_done(1, 60):
                    self.ready_s, self.first_review_s = ready - started, time.monotonic() - ready
                    return
            except OSError:
                time.sleep(0.5)
        raise RuntimeError("the service did not come up")

    def submit(self, texts: list[str]) -> dict:
        """Submit reviews in one request; returns the response (the reviews' ids)."""
        body = {"text": texts[0]} if len(texts) == 1 else {"reviews": [{"text": t} for t in texts]}
        request = urllib.request.Request(
            f"{self.base}/api/v1/reviews", data=json.dumps(body).encode(),
            headers={"Content-Type": "application/json"},
        )  # fmt: skip
        with urllib.request.urlopen(request, timeout=30) as response:
            assert response.status == 202
            return json.load(response)

    def count_finished(self) -> int:
        from sqlalchemy import func, select

        with self.sessions() as session:
            return session.scalar(
                select(func.count()).where(
                    Review.status.in_([ReviewStatus.done, ReviewStatus.failed])
                )
            )

    def wait_done(self, total: int, timeout: float, every: float = 0.05) -> bool:
        """Whether `total` reviews are finished within `timeout`, counting them `every` s."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.count_finished() >= total:
                return True
            time.sleep(every)
        return False

    def latencies(self, skip: int) -> list[float]:
        from sqlalchemy import select

        with self.sessions() as session:
            rows = session.execute(
                select(Review.created_at, Review.scored_at).order_by(Review.id).offset(skip)
            ).all()
        return [(as_utc(s) - as_utc(c)).total_seconds() for c, s in rows if s is not None]

    def close(self) -> None:
        stop(self.processes)
        shutil.rmtree(self.var, ignore_errors=True)


def end_to_end(
    model_dir: Path, texts: list[str], workers: int, batch: int, seconds: float
) -> tuple:
    service = Service(model_dir, workers, batch)
    try:
        # Throughput: one review per request from four clients; time until all are scored.
        done_before = service.count_finished()
        started = time.perf_counter()
        threads = [
            threading.Thread(target=lambda part=texts[k::4]: [service.submit([t]) for t in part])
            for k in range(4)
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        if not service.wait_done(done_before + len(texts), 600):
            raise RuntimeError("reviews were not all scored in time")
        throughput = rate(len(texts), time.perf_counter() - started)

        # Latency: single-review submissions at half that rate, open loop, for `seconds`.
        offered = throughput / 2
        done_before = service.count_finished()
        sent, started = 0, time.perf_counter()
        while time.perf_counter() - started < seconds:
            due = started + sent / offered
            time.sleep(max(0.0, due - time.perf_counter()))
            service.submit([texts[sent % len(texts)]])
            sent += 1
        if not service.wait_done(done_before + sent, 120):
            raise RuntimeError("latency-phase reviews were not all scored in time")
        latencies = sorted(service.latencies(skip=done_before))
        cut = statistics.quantiles(latencies, n=100)
        return throughput, offered, sent, cut[49], cut[94], cut[98]
    finally:
        service.close()


def worker_memory(model_dir: Path, texts: list[str], total: int) -> list[tuple[int, float]]:
    """Scored reviews and the worker pool's resident memory (MiB), sampled while one worker
    scores `total` reviews submitted in API batches of 1,000."""
    import psutil

    service = Service(model_dir, workers=1, batch=Settings().batch_size)
    try:
        worker = psutil.Process(service.processes[1].pid)

        def rss() -> float:
            processes = [worker, *worker.children(recursive=True)]
            return sum(p.memory_info().rss for p in processes) / 2**20

        start = service.count_finished()
        samples = [(0, rss())]
        pool = (texts * (1000 // len(texts) + 1))[:1000]
        for i in range(total // 1000):
            service.submit(pool)
            if i % 10 == 9:
                samples.append((service.count_finished() - start, rss()))
        while not service.wait_done(start + total, 15):
            samples.append((service.count_finished() - start, rss()))
        samples.append((service.count_finished() - start, rss()))
        return samples
    finally:
        service.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", required=True, type=Path)
    parser.add_argument("--model", required=True, type=Path, help="A model version folder.")
    parser.add_argument("--reviews", type=int, default=4096, help="Test reviews for 2-5.")
    parser.add_argument("--notebook-reviews", type=int, default=300)
    parser.add_argument("--batch", type=int, default=Settings().batch_size)
    parser.add_argument("--latency-seconds", type=float, default=30)
    parser.add_argument("--skip-service", action="store_true", help="Only rows 1-4.")
    parser.add_argument("--memory", type=int, help="Only: worker memory over this many reviews.")
    args = parser.parse_args()

    test = load_dataset(args.data).test.sample(None, 7)
    texts = test.texts[: args.reviews]
    if args.memory:
        print("| reviews scored | worker pool RSS, MiB |\n| ---: | ---: |")
        for scored, mib in worker_memory(args.model, texts, args.memory):
            print(f"| {scored:,} | {mib:,.0f} |")
        return
    rows = in_process(args.model, texts, args.notebook_reviews)
    print(f"model {args.model}, {os.cpu_count()} CPUs\n")
    print("| path | reviews | reviews/s | vs (2) | vs (1) |")
    print("| --- | ---: | ---: | ---: | ---: |")
    for name, n, per_second in rows:
        print(f"| {name} | {n} | {per_second:,.0f} | {per_second / rows[1][2]:.2f}x "
              f"| {per_second / rows[0][2]:,.0f}x |")  # fmt: skip
    if args.skip_service:
        return
    print(
        "\n| 5. end to end over HTTP | max reviews/s | vs (3) | offered/s | sent "
        "| p50 ms | p95 ms | p99 ms |"
    )
    print("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    for workers in (1, 2):
        throughput, offered, sent, p50, p95, p99 = end_to_end(
            args.model, texts, workers, args.batch, args.latency_seconds
        )
        print(f"| {workers} worker process{'es' if workers > 1 else ''} | {throughput:,.0f} "
              f"| {throughput / rows[2][2]:.2f} | {offered:,.0f} | {sent} | {p50 * 1000:.0f} "
              f"| {p95 * 1000:.0f} | {p99 * 1000:.0f} |", flush=True)  # fmt: skip


if __name__ == "__main__":
    main()
