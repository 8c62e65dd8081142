"""Does the pool scale? The time 1, then 2, worker processes with one TensorFlow thread each
take to clear a queue of single-review messages. Run by hand (it takes the whole machine):

    .venv/bin/python bench/drain.py --data ../shared/data/imdb/aclImdb_v1_labeled.tar.gz \\
        --model var/models/v1 \\
        --database-url postgresql+psycopg://sentiment:sentiment@127.0.0.1:5432/sentiment

For each pool size: the service starts and scores `--warm-up` training reviews, one message
each (the workers compile the batch shapes they meet), the workers stop consuming, `--reviews`
test reviews are stored and queued, one message each, and the workers start consuming again;
the clock runs from then until the last is scored. Also reports the CPU seconds per review of
the workers, Redis and PostgreSQL.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
import uuid
from contextlib import nullcontext
from pathlib import Path

from celery import Celery
from sqlalchemy import insert

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from overhead import Processes, scratch_database  # noqa: E402
from scoring import Service  # noqa: E402

from sentiment_core.db import Review, ReviewStatus  # noqa: E402
from sentiment_core.queue import SCORING_QUEUE, create_celery, enqueue_reviews  # noqa: E402
from sentiment_core.settings import Settings  # noqa: E402
from trainer.data import load_dataset  # noqa: E402


def queue_singly(service: Service, celery: Celery, texts: list[str]) -> None:
    """Store the reviews and queue them, one message each."""
    submission = uuid.uuid4().hex
    with service.sessions() as session:
        ids = session.scalars(
            insert(Review).returning(Review.id),
            [{"text": t, "status": ReviewStatus.queued, "submission": submission} for t in texts],
        ).all()
        session.commit()
    for review_id in ids:
        enqueue_reviews(celery, [review_id])


def drain(
    model: Path, texts: list[str], warm_up: list[str], workers: int, batch: int, database_url: str
) -> tuple[float, dict[str, float]]:
    """Seconds to score `texts` queued one message each, and CPU seconds per review, once the
    workers have scored `warm_up` (and compiled the batch shapes it made)."""
    service = Service(model, workers, batch, database_url=database_url, worker_threads=1)
    try:
        celery = create_celery(Settings(redis_url=service.redis_url))
        before = service.count_finished()
        queue_singly(service, celery, warm_up)
        if not service.wait_done(before + len(warm_up), 1800):
            raise RuntimeError("the warm-up reviews were not scored in 30 minutes")
        deadline = time.monotonic() + 120
        while len(celery.control.cancel_consumer(SCORING_QUEUE, reply=True, timeout=2)) < workers:
            if time.monotonic() > deadline:
                raise RuntimeError("the workers did not all stop consuming")
        before = service.count_finished()
        queue_singly(service, celery, texts)
        processes = Processes(service, workers)
        cpu = processes.cpu()
        started = time.perf_counter()
        celery.control.add_consumer(SCORING_QUEUE, reply=True, timeout=5)
        # Counted twice a second: the count is a query, whose CPU goes to PostgreSQL's figure.
        if not service.wait_done(before + len(texts), 1800, every=0.5):
            raise RuntimeError("the queue was not drained in 30 minutes")
        seconds = time.perf_counter() - started
        after = processes.cpu()
        per_review = {
            name: (after[name] - cpu[name]) / len(texts)
            for name in ("workers", "redis", "postgres")
            if name in after
        }
        return seconds, per_review
    finally:
        service.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", required=True, type=Path)
    parser.add_argument("--model", required=True, type=Path, help="A model version folder.")
    parser.add_argument("--database-url", help="A PostgreSQL server (default: SQLite).")
    parser.add_argument("--reviews", type=int, default=20_000)
    parser.add_argument("--batch", type=int, default=Settings().batch_size)
    parser.add_argument(
        "--warm-up", type=int, default=8000, help="Training reviews scored first, unmeasured."
    )
    args = parser.parse_args()

    dataset = load_dataset(args.data)
    texts = dataset.test.sample(None, 7).texts[: args.reviews]
    warm_up = dataset.train.sample(None, 7).texts[: args.warm_up]
    database = "PostgreSQL" if args.database_url else "SQLite"
    print(f"model {args.model}, {os.cpu_count()} CPUs, {len(texts):,} single-review messages, "
          f"BATCH_SIZE {args.batch}, {database}\n")  # fmt: skip
    print("| worker processes | seconds | reviews/s | speed-up | CPU ms per review: workers "
          "| Redis | PostgreSQL |")  # fmt: skip
    print("| ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    first = None
    for workers in (1, 2):
        database = scratch_database(args.database_url) if args.database_url else nullcontext("")
        with database as url:
            seconds, cpu = drain(args.model, texts, warm_up, workers, args.batch, url)
        first = first or seconds
        print(f"| {workers} | {seconds:.1f} | {len(texts) / seconds:,.0f} | {first / seconds:.2f}x "
              f"| {cpu['workers'] * 1000:.2f} | {cpu['redis'] * 1000:.2f} "
              f"| {cpu.get('postgres', 0) * 1000:.2f} |", flush=True)  # fmt: skip


if __name__ == "__main__":
    main()
