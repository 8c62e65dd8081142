"""A bounded load test of a local deployment: gunicorn web, 2 workers, Redis and PostgreSQL.

Offers single-review submissions open-loop at a fixed rate for a fixed time, then waits for
the queue to drain, and reports errors, reviews lost, latency and every process's memory over
the run. Run by hand (it takes the whole machine):

    .venv/bin/python bench/load.py --model var/models/v1 \\
        --database-url postgresql+psycopg://sentiment:sentiment@127.0.0.1:5432/load \\
        --rate 100 --minutes 10

The database must exist and be empty; the migrations are applied to it.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import threading
import time
import urllib.error
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from scoring import Service  # noqa: E402
from sqlalchemy import func, select  # noqa: E402

from sentiment_core.db import Review, ReviewStatus  # noqa: E402
from tests.factories import NEGATIVE, POSITIVE  # noqa: E402

SAMPLE_EVERY_S = 10
CLIENTS = 8  # threads sharing the offered rate, so one slow request does not stall the rest


def memory(service: Service) -> dict[str, float]:
    """Resident MiB of each service process with its children (gunicorn and pool workers)."""
    import psutil

    names = ["redis"] + [f"worker{i}" for i in range(len(service.processes) - 2)] + ["web"]
    out = {}
    for name, process in zip(names, service.processes, strict=True):
        root = psutil.Process(process.pid)
        out[name] = sum(p.memory_info().rss for p in [root, *root.children(True)]) / 2**20
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", required=True, type=Path)
    parser.add_argument("--database-url", required=True)
    parser.add_argument("--rate", type=float, default=100.0, help="reviews offered per second")
    parser.add_argument("--minutes", type=float, default=10.0)
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args()

    texts = [f"{t} (review {i})" for i in range(200) for t in POSITIVE + NEGATIVE]
    service = Service(args.model, args.workers, batch=64, database_url=args.database_url)
    errors: list[str] = []
    accepted = 0
    lock = threading.Lock()
    started = time.perf_counter()
    stop_at = started + args.minutes * 60

    def client(k: int) -> None:
        nonlocal accepted
        sent = k
        while True:
            due = started + sent / args.rate
            if due >= stop_at:
                return
            time.sleep(max(0.0, due - time.perf_counter()))
            try:
                service.submit([texts[sent % len(texts)]])
                with lock:
                    accepted += 1
            except (OSError, AssertionError, urllib.error.HTTPError) as exc:
                with lock:
                    errors.append(f"{type(exc).__name__}: {exc}")
            sent += CLIENTS

    threads = [threading.Thread(target=client, args=(k,)) for k in range(CLIENTS)]
    for thread in threads:
        thread.start()
    samples = []
    while any(t.is_alive() for t in threads):
        samples.append((round(time.perf_counter() - started), memory(service)))
        time.sleep(SAMPLE_EVERY_S)
    for thread in threads:
        thread.join()
    offered_seconds = time.perf_counter() - started
    drained = service.wait_done(accepted + 1, 300)  # +1: the warm-up review
    samples.append((round(time.perf_counter() - started), memory(service)))
    with service.sessions() as session:
        statuses = dict(
            session.execute(select(Review.status, func.count()).group_by(Review.status)).all()
        )
    latencies = sorted(service.latencies(skip=1))
    cut = statistics.quantiles(latencies, n=100)
    service.close()

    done = statuses.get(ReviewStatus.done, 0) - 1
    report = {
        "offered_per_s": args.rate,
        "seconds": round(offered_seconds),
        "accepted": accepted,
        "achieved_per_s": round(accepted / offered_seconds, 1),
        "errors": len(errors),
        "first_errors": errors[:5],
        "done": done,
        "failed": statuses.get(ReviewStatus.failed, 0),
        "lost": accepted - done - statuses.get(ReviewStatus.failed, 0),
        "drained": drained,
        "latency_s": {"p50": cut[49], "p95": cut[94], "p99": cut[98], "max": latencies[-1]},
        "memory_mib": samples,
    }
    print(json.dumps(report, indent=1))
    print(f"\n| minute | {' | '.join(samples[0][1])} |")
    print("| ---: |" + " ---: |" * len(samples[0][1]))
    for second, mib in samples[:: max(1, 60 // SAMPLE_EVERY_S)] + samples[-1:]:
        print(f"| {second / 60:.1f} | " + " | ".join(f"{v:.0f}" for v in mib.values()) + " |")


if __name__ == "__main__":
    main()
