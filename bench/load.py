"""A bounded load test of a local deployment: gunicorn web, 2 scoring workers, Redis and
PostgreSQL, loaded in one of two ways for a fixed time:

- `--rate R`: single-review submissions offered open-loop at R per second. Offered more than
  the workers sustain, with `--max-backlog` set, it shows load shedding: each submission past
  the backlog's limit must be refused with 503 and Retry-After, and the accepted ones scored
  within their bound.
- `--clients N`: N clients each submit one review, wait for its result with ?wait=30, and go
  on with the next: N requests waiting at once (the web then runs `--web-threads` threads in
  each of its 2 processes).

Then it waits for the backlog to empty and reports: submissions accepted, refused with
Retry-After, and anything else (errors); reviews scored, failed and lost; the latency of the
accepted reviews (server side, from the review's commit to its result's); the seconds the
backlog took to empty once the load stopped; and each process's memory over the run. Run by
hand (it takes the whole machine):

    .venv/bin/python bench/load.py --model var/models/v1 \\
        --database-url postgresql+psycopg://sentiment:sentiment@127.0.0.1:5432/sentiment \\
        --rate 100 --minutes 10

The service runs on a scratch database created on that server and dropped afterwards.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from overhead import Client, scratch_database  # noqa: E402
from scoring import Service  # noqa: E402
from sqlalchemy import func, select  # noqa: E402

from sentiment_core.backlog import WAITING  # noqa: E402
from sentiment_core.db import Review, ReviewStatus  # noqa: E402
from tests.factories import NEGATIVE, POSITIVE  # noqa: E402

SAMPLE_EVERY_S = 10
SUBMITTED = ("accepted", "refused", "errors")  # what became of each submission


def memory(service: Service) -> dict[str, float]:
    """Resident MiB of each service process with its children (gunicorn and pool workers), and
    the threads the web's processes have started (gunicorn starts one per request served at
    once, up to --threads, and keeps it)."""
    import psutil

    names = ["redis"] + [f"worker{i}" for i in range(len(service.processes) - 2)] + ["web"]
    trees = {}
    for name, process in zip(names, service.processes, strict=True):
        root = psutil.Process(process.pid)
        trees[name] = [root, *root.children(True)]
    out = {name: sum(p.memory_info().rss for p in tree) / 2**20 for name, tree in trees.items()}
    out["web threads"] = sum(p.num_threads() for p in trees["web"])
    return out


class Outcomes:
    """What the clients saw: submissions accepted, refused with Retry-After, and errors."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.counts: Counter[str] = Counter()
        self.errors: list[str] = []

    def submit(self, client: Client, text: str) -> int | None:
        """Submit one review; its id, or None when it was refused or failed."""
        try:
            status, headers, body = client.exchange("POST", "/api/v1/reviews", {"text": text})
        except OSError as exc:
            status, headers, body = 0, None, {"error": f"{type(exc).__name__}: {exc}"}
        refused = status == 503 and body["error"]["code"] == "overloaded"
        outcome = "accepted" if status == 202 else "refused" if refused else "errors"
        with self.lock:
            self.counts[outcome] += 1
            if refused and not (headers and headers.get("Retry-After")):
                self.counts["refused without Retry-After"] += 1
            if outcome == "errors":
                self.errors.append(f"{status}: {body}")
        return body["id"] if status == 202 else None

    def failed_wait(self, error: str) -> None:
        with self.lock:
            self.counts["errors waiting"] += 1
            self.errors.append(error)


def open_loop(service: Service, texts: list[str], rate: float, seconds: float, outcomes: Outcomes):
    started = time.perf_counter()
    senders = max(8, int(rate) // 4)  # enough that a slow answer never delays the next one

    def run(k: int) -> None:
        client = Client(service.port)
        for sent in range(k, int(rate * seconds), senders):
            time.sleep(max(0.0, started + sent / rate - time.perf_counter()))
            outcomes.submit(client, texts[sent % len(texts)])

    return [threading.Thread(target=run, args=(k,)) for k in range(senders)]


def closed_loop(service: Service, texts: list[str], clients: int, seconds: float, outcomes):
    stop_at = time.perf_counter() + seconds

    def run(k: int) -> None:
        client, sent = Client(service.port), k
        while time.perf_counter() < stop_at:
            review = outcomes.submit(client, texts[sent % len(texts)])
            while review is not None:
                try:
                    status, body = client.call("GET", f"/api/v1/reviews/{review}?wait=30")
                except OSError as exc:
                    status, body = 0, {"error": f"{type(exc).__name__}: {exc}"}
                if status != 200:
                    outcomes.failed_wait(f"{status}: {body}")
                if status != 200 or body["status"] in ("done", "failed"):
                    break
            sent += clients

    return [threading.Thread(target=run, args=(k,)) for k in range(clients)]


def waiting(service: Service) -> int:
    with service.sessions() as session:
        return session.scalar(select(func.count()).where(Review.status.in_(WAITING)))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", required=True, type=Path)
    parser.add_argument("--database-url", required=True, help="A PostgreSQL server.")
    load = parser.add_mutually_exclusive_group(required=True)
    load.add_argument("--rate", type=float, help="reviews offered per second, open loop")
    load.add_argument("--clients", type=int, help="clients that submit and wait, closed loop")
    parser.add_argument("--minutes", type=float, default=10.0)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--max-backlog", type=int, default=0, help="MAX_BACKLOG (0: no limit)")
    parser.add_argument("--web-threads", type=int, default=32, help="per web process")
    args = parser.parse_args()

    texts = [f"{t} (review {i})" for i in range(200) for t in POSITIVE + NEGATIVE]
    outcomes = Outcomes()
    shape: Callable = open_loop if args.rate else closed_loop
    with scratch_database(args.database_url) as url:
        service = Service(
            args.model, args.workers, batch=64, database_url=url,
            max_backlog=args.max_backlog, web_threads=args.web_threads,
        )  # fmt: skip
        started = time.perf_counter()
        threads = shape(service, texts, args.rate or args.clients, args.minutes * 60, outcomes)
        for thread in threads:
            thread.start()
        samples = []
        while any(t.is_alive() for t in threads):
            samples.append((round(time.perf_counter() - started), memory(service)))
            deadline = time.monotonic() + SAMPLE_EVERY_S
            for thread in threads:
                thread.join(max(0.0, deadline - time.monotonic()))
        loaded_s = time.perf_counter() - started
        while waiting(service) and time.perf_counter() - started < loaded_s + 300:
            time.sleep(0.5)
        backlog_s = time.perf_counter() - started - loaded_s
        samples.append((round(time.perf_counter() - started), memory(service)))
        with service.sessions() as session:
            statuses = dict(
                session.execute(select(Review.status, func.count()).group_by(Review.status)).all()
            )
        latencies = sorted(service.latencies(skip=1))  # the first is the warm-up review
        service.close()

    cut = statistics.quantiles(latencies, n=100)
    done = statuses.get(ReviewStatus.done, 0) - 1
    failed = statuses.get(ReviewStatus.failed, 0)
    accepted = outcomes.counts["accepted"]
    report = {
        "load": f"{args.rate}/s offered" if args.rate else f"{args.clients} waiting clients",
        "seconds": round(loaded_s),
        "max_backlog": args.max_backlog,
        "submissions": dict(outcomes.counts),
        "sent_per_s": round(sum(outcomes.counts[k] for k in SUBMITTED) / loaded_s, 1),
        "accepted_per_s": round(accepted / loaded_s, 1),
        "first_errors": outcomes.errors[:5],
        "done": done,
        "failed": failed,
        "lost": accepted - done - failed,
        "backlog_empty_after_s": round(backlog_s, 1),
        "latency_s": {"p50": cut[49], "p95": cut[94], "p99": cut[98], "max": latencies[-1]},
    }
    print(json.dumps(report, indent=1))
    print(f"\n| minute | {' | '.join(samples[0][1])} |")
    print("| ---: |" + " ---: |" * len(samples[0][1]))
    for second, mib in samples[:: max(1, 60 // SAMPLE_EVERY_S)] + samples[-1:]:
        print(f"| {second / 60:.1f} | " + " | ".join(f"{v:.0f}" for v in mib.values()) + " |")


if __name__ == "__main__":
    main()
