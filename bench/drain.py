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

First, the ceiling no pool can pass on this machine: `--ceiling-reviews` of the same reviews
scored in-process in batches of `--batch`, by one process with one TensorFlow thread, then by two
such processes at once, `--rounds` times in turn. Two processes at once scoring at less than
twice one's rate share something no queue or database decides: cores, caches, memory.
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import statistics
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


def score_on_command(model: Path, texts: list[str], batch: int, commands, results) -> None:
    """A process with one TensorFlow thread and every shape compiled: each True it is sent, it
    scores `texts` in batches of `batch` and answers the seconds that took."""
    import tensorflow as tf

    from sentiment_inference.scoring import Scorer

    tf.config.threading.set_intra_op_parallelism_threads(1)
    tf.config.threading.set_inter_op_parallelism_threads(1)
    scorer = Scorer.load(model.name, model)
    scorer.compile_all()
    results.put(0.0)
    while commands.get():
        started = time.perf_counter()
        for start in range(0, len(texts), batch):
            scorer.score(texts[start : start + batch])
        results.put(time.perf_counter() - started)


def ceiling(model: Path, texts: list[str], batch: int, rounds: int) -> list[tuple[float, float]]:
    """For each round, the reviews/s of one scoring process alone, then of two at once (the sum
    of their rates)."""
    context = multiprocessing.get_context("spawn")
    pipes = [(context.Queue(), context.Queue()) for _ in range(2)]
    processes = [
        context.Process(target=score_on_command, args=(model, texts, batch, *pipe), daemon=True)
        for pipe in pipes
    ]
    for process in processes:
        process.start()
    for _, results in pipes:
        results.get(timeout=1800)  # compiled

    def rate(active: list) -> float:
        for commands, _ in active:
            commands.put(True)
        return sum(len(texts) / results.get(timeout=1800) for _, results in active)

    try:
        return [(rate(pipes[:1]), rate(pipes)) for _ in range(rounds)]
    finally:
        for commands, _ in pipes:
            commands.put(False)
        for process in processes:
            process.join(60)


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
    parser.add_argument("--ceiling-reviews", type=int, default=5000)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()

    dataset = load_dataset(args.data)
    texts = dataset.test.sample(None, 7).texts[: args.reviews]
    warm_up = dataset.train.sample(None, 7).texts[: args.warm_up]
    database = "PostgreSQL" if args.database_url else "SQLite"
    print(f"model {args.model}, {os.cpu_count()} CPUs, {len(texts):,} single-review messages, "
          f"BATCH_SIZE {args.batch}, {database}\n")  # fmt: skip
    pairs = ceiling(args.model, texts[: args.ceiling_reviews], args.batch, args.rounds)
    print(f"In-process, batches of {args.batch}, one TensorFlow thread a process, "
          f"{args.ceiling_reviews:,} reviews:\n")  # fmt: skip
    print("| round | 1 process: reviews/s | 2 at once: reviews/s | speed-up |")
    print("| ---: | ---: | ---: | ---: |")
    for number, (one, two) in enumerate(pairs, 1):
        print(f"| {number} | {one:,.0f} | {two:,.0f} | {two / one:.2f}x |")
    ratios = [two / one for one, two in pairs]
    print(f"\nceiling: median {statistics.median(ratios):.2f}x, "
          f"range {min(ratios):.2f}-{max(ratios):.2f}x\n", flush=True)  # fmt: skip
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
